"""Our car in a MetaDrive world: build the map, step it, read the car's state, frame and masks.

MetaDrive (Apache-2.0, https://github.com/metadriverse/metadrive) renders a front-camera road
view with Panda3D. Importing it and making it render headless on a CPU (the version, the install
hint, five run-time adjustments) is `sim/metadrive_runtime.py`; this module builds the world,
steps it and reads our car's state, camera frame and lane masks back.

Conventions here are ours, not MetaDrive's: SI units, REP-103 signs (+ = left). MetaDrive's
2-D frame flips Panda3D's y axis, so its lateral coordinate grows to the right; `SimState`
reports lateral offsets with + = left of the lane centre. The ego car's steering command
s in [-1, 1] turns its front wheels by s * 40 degrees (+ = left, checked in test_simulation).
Images come back BGR (Panda3D's RAM image order), as OpenCV and our preprocessing expect.
"""

import contextlib
from dataclasses import asdict, dataclass, field
import io
import math
import os

import numpy as np

from signattn_driver.errors import ConfigError
from signattn_driver.route_command import FOLLOW_LANE
from signattn_driver.sim.lane_masks import build_quads, map_lines, project_quads
from signattn_driver.sim.maps import map_config, parse_blocks
# INSTALL_HINT, SIM_VERSION, is_available and require are re-exported: callers import them here.
from signattn_driver.sim.metadrive_runtime import (INSTALL_HINT, is_available,  # noqa: F401
                                                   load, MetaDriveError,
                                                   render_only_the_camera, require,
                                                   restore_python_utf8, SIM_VERSION)
from signattn_driver.sim.route import junctions_of_route, RouteCommands, RouteConfig

# Simulated frames go through JPEG at this quality, as in the bags and over ROS.
CAMERA_JPEG_QUALITY = 75
MAX_STEERING_DEG = 40.0          # MetaDrive DefaultVehicle max_steering (utils/space.py)


@dataclass
class SimConfig:
    """What the simulated world looks like and how fast it is sampled."""

    width_px: int = 320          # camera image; MetaDrive's lens has a 2:1 aspect, keep it
    height_px: int = 160
    rate_hz: float = 20.0        # camera and control rate (Udacity cameras: 20 Hz)
    physics_substeps: int = 5    # physics steps per frame (0.01 s at 20 Hz)
    # procedural road blocks per map (curves, ramps, junctions), or a PG block sequence such as
    # 'CSCCSCC' (straights and curves only); sim/maps.py
    map_blocks: int | str = 7
    lane_width_m: float = 3.5
    lane_num: int = 2            # lanes per direction
    traffic_density: float = 0.05  # MetaDrive default 0.1; each visible car costs render time
    target_speed_kmh: float = 30.0  # IDM expert's cruise speed (MetaDrive's NORMAL_SPEED)
    route: RouteConfig = field(default_factory=RouteConfig)  # the navigator's commands

    def __post_init__(self):
        """Reject settings MetaDrive would misbehave with."""
        if self.width_px != 2 * self.height_px:
            raise ConfigError('MetaDrive camera images are 2:1 (its lens aspect ratio); got '
                              f'{self.width_px}x{self.height_px}')
        self.map_blocks = parse_blocks(self.map_blocks)
        if not (self.rate_hz > 0 and self.physics_substeps >= 1):
            raise ConfigError(f'invalid simulator config {self}')

    def to_dict(self) -> dict:
        """Plain dict for manifests."""
        return asdict(self)


@dataclass
class SimState:
    """The ego car after a step (or a reset).

    image_bgr is (height_px, width_px, 3) uint8 as the front camera sees it.
    """

    image_bgr: np.ndarray
    time_s: float
    steering: float                 # applied command in [-1, 1], + = left
    front_wheel_angle_rad: float    # steering * 40 deg
    speed_mps: float
    lateral_offset_m: float         # to the centre of the nearest lane, + = left of it
    route_progress_m: float
    route_length_m: float
    out_of_road: bool               # off every lane, or on a solid line or the kerb
    crashed: bool                   # hit a vehicle, object or building
    arrived: bool                   # reached the route's destination
    position_m: tuple               # (x, y) in Panda3D world (right-handed, z up)
    heading_rad: float              # in the same frame, + = counter-clockwise
    route_command: int = FOLLOW_LANE  # the navigator's command here (sim/route.py)

    @property
    def route_completion(self) -> float:
        """Return the route fraction driven, 0..1."""
        return min(1.0, max(0.0, self.route_progress_m / max(self.route_length_m, 1e-6)))


def steering_to_front_wheel_rad(steering: float) -> float:
    """Convert a MetaDrive command s in [-1, 1] to a front-wheel angle in rad (+ = left)."""
    return float(np.clip(steering, -1.0, 1.0)) * math.radians(MAX_STEERING_DEG)


def front_wheel_rad_to_steering(front_wheel_angle_rad: float) -> float:
    """Convert a front-wheel angle in rad to a MetaDrive command, clipped to [-1, 1]."""
    return float(np.clip(front_wheel_angle_rad / math.radians(MAX_STEERING_DEG), -1.0, 1.0))


class MetaDriveSim:
    """One MetaDrive world with one ego car (MetaDrive allows one per process).

    Example:
        with MetaDriveSim(SimConfig()) as sim:
            state = sim.reset(seed=3)
            while not state.arrived:
                steering, throttle = sim.expert_action()
                state = sim.step(steering, throttle)
    """

    def __init__(self, config: SimConfig | None = None):
        self.config = config or SimConfig()
        md = load()
        self._md = md
        c = self.config
        env_config = dict(
            use_render=False, offscreen_render=True, rgb_clip=False,
            # adjustment 5 (sim/metadrive_runtime.py): a main window no larger than the camera
            window_size=(c.width_px, c.height_px), disable_model_compression=True,
            show_interface=False, show_logo=False, show_fps=False, show_skybox=True,
            vehicle_config=dict(rgb_camera=(c.width_px, c.height_px), show_navi_mark=False),
            physics_world_step_size=1.0 / (c.rate_hz * c.physics_substeps),
            decision_repeat=c.physics_substeps,
            map_config=map_config(c.map_blocks, c.lane_width_m, c.lane_num),
            traffic_density=c.traffic_density, start_seed=0, environment_num=1_000_000,
            random_spawn_lane_index=False)
        try:
            self._env = md['MetaDriveEnv'](env_config)
        except Exception as err:
            raise MetaDriveError(f'cannot configure MetaDrive: {err}') from err
        # Panda3D's ShowBase sets PYTHONUTF8=on, which every Python started from this process
        # (e.g. the drive node) rejects at start-up; restored after the lazy engine start.
        self._python_utf8 = os.environ.get('PYTHONUTF8')
        self._expert = None
        self._quads = None      # painted lines as world-space quads (lane_masks.build_quads)
        self._step = 0
        self._route = None
        self.route_commands = None    # sim/route.RouteCommands of the current map's route
        self._steering = 0.0
        self.seed = None

    def __enter__(self):
        """Return self; the world is closed on exit."""
        return self

    def __exit__(self, *exc):
        """Close the world."""
        self.close()

    def close(self):
        """Shut the engine down (a new MetaDriveSim may be made afterwards)."""
        if self._env is not None:
            with contextlib.redirect_stdout(io.StringIO()):
                self._env.close()
            self._env = None

    @property
    def vehicle(self):
        """Return the ego vehicle object of MetaDrive (for scripted controllers)."""
        return self._env.vehicle

    @property
    def dt_s(self) -> float:
        """Return the time between frames."""
        return 1.0 / self.config.rate_hz

    def reset(self, seed: int) -> SimState:
        """Build map `seed` (a procedural map per seed), place the car, render the first frame."""
        if self._env is None:
            raise MetaDriveError('the simulator is closed')
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                self._env.reset(force_seed=int(seed))
        except Exception as err:
            raise MetaDriveError(f'MetaDrive reset failed for seed {seed}: {err}') from err
        self.seed = int(seed)
        restore_python_utf8(self._python_utf8)
        engine = self._env.engine
        render_only_the_camera(engine, self.vehicle)
        expert = self._md['IDMPolicy'](self.vehicle, random_seed=self.seed)
        expert.enable_lane_change = False     # keep its lane: steering the camera can explain
        expert.target_speed = self.config.target_speed_kmh
        self._expert = expert
        self._step = 0
        self._steering = 0.0
        self._quads = build_quads(self._map_lines())
        self._route = self._route_segments()
        self.route_commands = RouteCommands(junctions_of_route(self.vehicle.navigation),
                                            self.config.route)
        self._camera = self.vehicle.image_sensors['rgb_camera']
        self._camera.track(self.vehicle)
        engine.graphicsEngine.renderFrame()
        engine.graphicsEngine.renderFrame()
        return self._state()

    def expert_action(self) -> tuple:
        """Return MetaDrive's IDM expert's (steering, throttle) for the current state."""
        steering, throttle = self._expert.act()
        return float(np.clip(steering, -1, 1)), float(np.clip(throttle, -1, 1))

    def step(self, steering: float, throttle: float) -> SimState:
        """Apply (steering, throttle) in [-1, 1] for one frame period and render."""
        if self._expert is None:
            raise MetaDriveError('call reset() before step()')
        self._steering = float(np.clip(steering, -1.0, 1.0))
        action = [self._steering, float(np.clip(throttle, -1.0, 1.0))]
        env = self._env
        # env.step would also build MetaDrive's own observation (a second screenshot, a lidar
        # scan and a Python-list copy of the image); we read the camera ourselves instead.
        env._step_simulator({agent: action for agent in env.vehicles})
        self._step += 1
        return self._state()

    def _image(self) -> np.ndarray:
        region = self._camera.get_cam().node().getDisplayRegion(0)
        shot = region.getScreenshot()
        data = np.frombuffer(bytes(shot.getRamImage()), np.uint8)
        image = data.reshape(shot.getYSize(), shot.getXSize(), -1)[::-1, :, :3]
        return np.ascontiguousarray(image)

    def _state(self) -> SimState:
        v = self.vehicle
        lane = v.lane
        _, lateral = lane.local_coordinates(v.position)
        pos = v.origin.getPos()
        heading = math.radians(v.origin.getH()) + math.pi / 2  # models face +y in Panda3D
        progress, length = self._route_progress()
        return SimState(
            image_bgr=self._image(), time_s=self._step * self.dt_s, steering=self._steering,
            front_wheel_angle_rad=steering_to_front_wheel_rad(self._steering),
            speed_mps=float(v.speed) / 3.6, lateral_offset_m=-float(lateral),
            route_progress_m=progress, route_length_m=length,
            out_of_road=bool(self._env._is_out_of_road(v) or not v.on_lane),
            crashed=bool(v.crash_vehicle or v.crash_object or v.crash_building),
            arrived=bool(v.arrive_destination), position_m=(float(pos[0]), float(pos[1])),
            heading_rad=float(math.atan2(math.sin(heading), math.cos(heading))),
            route_command=self.route_commands.at(progress))

    # -- route bookkeeping -------------------------------------------------------------------
    def _route_segments(self) -> list:
        nav = self.vehicle.navigation
        graph = nav.map.road_network.graph
        nodes = nav.checkpoints
        return [(a, b, float(graph[a][b][0].length)) for a, b in zip(nodes[:-1], nodes[1:])]

    def route_junctions(self) -> list:
        """Where the route crosses a junction, in route order.

        Returns:
            [(kind, route fraction where the junction block starts)], kind one of
            'intersection', 't_junction', 'roundabout' (MetaDrive block IDs X, T, O);
            `route_commands` has their commands and extents in metres.
        """
        total = max(sum(length for _, _, length in self._route), 1e-6)
        return [(j.kind, round(j.entry_m / total, 4)) for j in self.route_commands.junctions]

    def lane_outlines(self, step_m: float = 2.0) -> list:
        """Every lane of the current map as a polygon, for top-down drawings.

        Returns:
            [(polygon (N, 2) float32 Panda3D world x, y in m (as `SimState.position_m`),
            on_route bool)], one per lane.
        """
        graph = self._env.current_map.road_network.graph
        route = {(a, b) for a, b, _ in self._route or ()}
        outlines = []
        for start, ends in graph.items():
            for end, lanes in ends.items():
                for lane in lanes:
                    s = np.linspace(0.0, lane.length, max(2, int(lane.length / step_m) + 1))
                    half = lane.width_at(0) / 2
                    left = [lane.position(si, -half) for si in s]
                    right = [lane.position(si, half) for si in s[::-1]]
                    xy = np.array(left + right, np.float32)
                    xy[:, 1] *= -1      # MetaDrive's 2-D frame flips Panda3D's y
                    outlines.append((xy, (start, end) in route))
        return outlines

    def _route_progress(self) -> tuple:
        """Return (metres along the route to the car, route length)."""
        nav = self.vehicle.navigation
        total = sum(s[2] for s in self._route)
        index = nav._target_checkpoints_index[0]
        lane = nav.current_ref_lanes[0]
        long, _ = lane.local_coordinates(self.vehicle.position)
        done = sum(s[2] for s in self._route[:index])
        return float(min(total, done + float(np.clip(long, 0.0, lane.length)))), float(total)

    # -- ground-truth masks (signattn_driver.sim.lane_masks) ------------------------------------
    def _map_lines(self) -> list:
        """Sample every painted line of the map as Panda3D world points, once per reset."""
        return map_lines(self._env.current_map.road_network.graph, self._md['LineType'],
                         float(self._md['stripe_m']))

    def marking_mask(self, height: int = 80, width: int = 160) -> np.ndarray:
        """Project the map's lane markings and road edges into the camera frame.

        Returns:
            (height, width) uint8: MASK_MARKING (1) on lane markings, MASK_EDGE (2) on road
            edges (kerb lines), 0 elsewhere. 80x160 is the network input frame.
        """
        cam = self._camera.get_cam()
        lens = self._camera.get_lens()
        render = self._env.engine.render
        return project_quads(self._quads, world_to_camera=_matrix(render.getMat(cam)),
                             projection=_matrix(lens.getProjectionMat()), near=lens.getNear(),
                             camera_xy=np.array(cam.getPos(render), np.float64)[:2],
                             height=height, width=width)


def _matrix(mat) -> np.ndarray:
    return np.array([[mat.getCell(i, j) for j in range(4)] for i in range(4)], np.float64)
