"""One way for the benchmark scripts to hand back their result: printed, and written as JSON."""

import json
from pathlib import Path


def emit_json(result: dict, out=None) -> str:
    """Print `result` as indented JSON and, if `out` is given, write it there (folders made)."""
    text = json.dumps(result, indent=2)
    if out:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + '\n')
    print(text)
    return text
