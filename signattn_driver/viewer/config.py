"""Settings of the live viewer (`signattn view`, `view:=true`): the one owner of its defaults."""

from dataclasses import dataclass
import ipaddress

from signattn_driver.errors import SignattnError


class ViewerError(SignattnError):
    """The viewer cannot start or serve (port in use, bad setting, missing package)."""


@dataclass
class ViewerConfig:
    """Where the viewer listens and what it shows.

    Attributes:
        host: address of the web page and of the Foxglove server. Loopback by default: the
            page shows the camera, so anything else is a choice (and is warned about).
        port: web page port (http://host:port/).
        foxglove: also serve the topics through the Foxglove WebSocket protocol.
        foxglove_port: its port (ws://host:foxglove_port).
        trace_s: length of the steering trace on the page, seconds.
        stale_s: the page calls frames or status missing after this long, seconds.
        jpeg_quality: JPEG quality (1-100) of the pictures sent to browsers and Foxglove.
        max_clients: browser connections served at once; more get HTTP 503.
        vehicle: vehicle profile (config/vehicles/NAME.yaml) for the steering-wheel angle the
            page shows next to u: theta = u d_w K_s, the kinematic (speed 0) angle of eq. 3.
        niceness: added to the viewer process's nice value at start (0 = unchanged): on a
            small computer the drive node, not its viewer, should win the CPU.
    """

    host: str = '127.0.0.1'
    port: int = 8080
    foxglove: bool = False
    foxglove_port: int = 8765
    trace_s: float = 30.0
    stale_s: float = 3.0
    jpeg_quality: int = 80
    max_clients: int = 16
    vehicle: str = 'mkz'
    niceness: int = 10

    def __post_init__(self):
        """Reject settings the viewer cannot run with, naming the setting."""
        for name in ('port', 'foxglove_port'):
            value = getattr(self, name)
            if not 0 <= int(value) <= 65535:
                raise ViewerError(f'{name} must be 0..65535 (0 = any free port), got {value}')
        if not 1 <= int(self.jpeg_quality) <= 100:
            raise ViewerError(f'jpeg_quality must be 1..100, got {self.jpeg_quality}')
        if not self.trace_s > 0 or not self.stale_s > 0:
            raise ViewerError(f'trace_s and stale_s must be > 0, got {self.trace_s}, '
                              f'{self.stale_s}')
        if not 0 <= int(self.niceness) <= 19:
            raise ViewerError(f'niceness must be 0..19, got {self.niceness}')
        if int(self.max_clients) < 1:
            raise ViewerError(f'max_clients must be >= 1, got {self.max_clients}')

    @property
    def loopback(self) -> bool:
        """Whether `host` is reachable from this machine only."""
        return is_loopback(self.host)

    @property
    def url(self) -> str:
        """The page's address as a browser on this machine opens it."""
        host = f'[{self.host}]' if ':' in self.host else self.host
        return f'http://{host}:{self.port}/'


def is_loopback(host: str) -> bool:
    """Whether `host` (an address or 'localhost') names this machine only."""
    if host.lower() == 'localhost':
        return True
    try:
        return ipaddress.ip_address(host.strip('[]')).is_loopback
    except ValueError:
        return False


def exposure_warning(config: ViewerConfig) -> str | None:
    """Return the warning for a viewer that listens beyond this machine, else None."""
    if config.loopback:
        return None
    return (f'the viewer listens on {config.host}: everyone who can reach this address sees the '
            f'camera and the commands, unauthenticated (default {ViewerConfig.host})')
