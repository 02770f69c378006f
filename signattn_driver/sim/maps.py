"""Which MetaDrive maps to drive: a number of procedural blocks or a block sequence.

`--blocks 7` asks MetaDrive's procedural generator (BIG) for 7 blocks drawn from its default
block distribution (curves, straights, ramps, intersections, T-junctions, roundabouts), a new
map per seed. `--blocks CSCCSCC` fixes the block types and their order (the seed still draws
each block's shape), e.g. straights and curves only, so lane keeping can be measured apart from
route choices. MetaDrive always puts its first block ('I', the spawn road) in front.

Letters are the `ID`s of the PG blocks MetaDrive 0.2.6's generator knows
(metadrive/component/algorithm/blocks_prob_dist.py, PGBlockDistConfig); the map config keys
are its BaseMap.GENERATE_TYPE / GENERATE_CONFIG with BigGenerateMethod 'block_num' or
'block_sequence' (metadrive/component/map/pg_map.py).
"""

from signattn_driver.errors import ConfigError

BLOCKS_HELP = ('road blocks per map: a number (procedural maps from MetaDrive\'s default block '
               'mix) or a MetaDrive block sequence such as CSCCSCC (S straight, C curve, '
               'X intersection, T T-junction, O roundabout, r/R ramps; sim/maps.py)')

PG_BLOCKS = {
    'S': 'straight', 'C': 'curve',
    'X': 'intersection', 'T': 't_junction', 'O': 'roundabout',
    'r': 'in-ramp', 'R': 'out-ramp', 'f': 'in-fork', 'F': 'out-fork',
    'y': 'merge', 'Y': 'split', 'B': 'bidirection', 'P': 'parking lot', '$': 'toll gate',
}


class MapSpecError(ConfigError):
    """A --blocks value that is neither a positive count nor a sequence of PG block letters."""


def parse_blocks(value) -> int | str:
    """Read a block count or a block sequence, as `--blocks` gives it.

    Args:
        value: an int, a digit string ('7') or a string of PG block letters ('CSCCSCC').

    Returns:
        The count as an int >= 1, or the sequence string unchanged.

    Raises:
        MapSpecError: zero or negative counts, unknown letters (the message lists the known
            ones), or an empty value.
    """
    if isinstance(value, bool):
        raise MapSpecError(f'blocks must be a count or a block sequence, got {value!r}')
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        count = int(value)
        if count < 1:
            raise MapSpecError(f'a map needs at least one block, got {count}')
        return count
    if not isinstance(value, str) or not value.strip():
        raise MapSpecError(f'blocks must be a count or a block sequence, got {value!r}')
    sequence = value.strip()
    unknown = sorted(set(sequence) - set(PG_BLOCKS))
    if unknown:
        known = ', '.join(f'{k} {v}' for k, v in PG_BLOCKS.items())
        hint = (' (the spawn block I is always first; leave it out)' if 'I' in unknown else '')
        raise MapSpecError(f'unknown MetaDrive block letter(s) {unknown} in {sequence!r}{hint}; '
                           f'known: {known}')
    return sequence


def map_config(blocks, lane_width_m: float, lane_num: int) -> dict:
    """Return MetaDrive's `map_config` for a block count or sequence (see `parse_blocks`)."""
    blocks = parse_blocks(blocks)
    kind = 'block_num' if isinstance(blocks, int) else 'block_sequence'
    return {'type': kind, 'config': blocks, 'lane_width': lane_width_m, 'lane_num': lane_num}


def describe_blocks(blocks) -> str:
    """Human-readable map kind for reports, e.g. '7 procedural blocks' or 'blocks CSCCSCC'."""
    blocks = parse_blocks(blocks)
    return f'{blocks} procedural blocks' if isinstance(blocks, int) else f'blocks {blocks}'
