"""Faithful stand-ins for the Udacity CH2 data, written with rosbags (tests and benchmarks).

Real Udacity bags are 4.7 GB and cannot ship with the package, so tests and
`signattn benchmark convert` write their own with the same shape
(../shared/data/UDACITY_FORMAT.md):

- ROS 1 bag v2.0 with the exact topic names and types: JPEG 640x480
  `sensor_msgs/CompressedImage` cameras at 20 Hz with `camera_info`, `dbw_mkz_msgs/SteeringReport`
  at ~50 Hz in the 2016 layout (md5 25bf2c220d904531d8bc16ab5271325d, asserted) or the later
  1.0.7 layout, and extra topics of custom types a converter has never heard of.
- Header stamps jitter around the nominal rate and the bag's receive times lag the header stamps,
  so a converter that used receive times instead of header stamps would be caught.
- The CH2_001 test-release folder (`center/<stamp_ns>.jpg` + `frame_id,steering_angle` CSV) and
  the `interpolated.csv` folder of rwightman's udacity-driving-reader.

The steering profile is analytic by default or follows a CSV of real labels (`profile_csv`).
"""

import csv
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from rosbags.rosbag1 import Writer
from rosbags.typesys import get_types_from_msg, get_typestore, Stores

STEERING_REPORT_TOPIC = '/vehicle/steering_report'
STEERING_REPORT_TYPE = 'dbw_mkz_msgs/msg/SteeringReport'
STEERING_REPORT_MD5_2016 = '25bf2c220d904531d8bc16ab5271325d'
IMAGE_SIZE_WH = (640, 480)
FIRST_STAMP_NS = 1_479_424_215_880_976_321          # HMB_1's first center frame

# dbw_mkz_msgs/SteeringReport as released by Dataspeed in 2016 (1.0.0-1.0.6), comments included
# as `rosbag record` embeds them.
STEERING_REPORT_2016 = """Header header

# Current steering wheel angle in radians
float32 steering_wheel_angle

# Steering wheel angle command in radians
float32 steering_wheel_angle_cmd

# Steering wheel torque in Nm
float32 steering_wheel_torque

# Vehicle speed in m/s
float32 speed

# Status
bool enabled  # Enabled
bool override # Driver override

# Faults
bool driver      # Driver activity
bool fault_wdc
bool fault_bus1
bool fault_bus2
bool fault_calibration
bool fault_connector # This fault can be ignored
"""

# The 1.0.7 change: `driver` and `fault_connector` gone, `timeout` added.
STEERING_REPORT_1_0_7 = """Header header

# Current steering wheel angle in radians
float32 steering_wheel_angle

# Steering wheel angle command in radians
float32 steering_wheel_angle_cmd

# Steering wheel torque in Nm
float32 steering_wheel_torque

# Vehicle speed in m/s
float32 speed

# Status
bool enabled  # Enabled
bool override # Driver override
bool timeout  # Command timeout

# Faults
bool fault_wdc
bool fault_bus1
bool fault_bus2
bool fault_calibration
"""

STEERING_LAYOUTS = {'2016': STEERING_REPORT_2016, '1.0.7': STEERING_REPORT_1_0_7}

# Custom types the converter does not use (and must skip without failing).
_EXTRA_TYPES = {
    'dbw_mkz_msgs/msg/WheelSpeedReport': (
        'Header header\nfloat32 front_left\nfloat32 front_right\nfloat32 rear_left\n'
        'float32 rear_right\n'),
    'dataspeed_can_msgs/msg/CanMessageStamped': (
        'Header header\ndataspeed_can_msgs/CanMessage msg\n'
        '================================================================================\n'
        'MSG: dataspeed_can_msgs/CanMessage\nuint8[8] data\nuint32 id\nbool extended\n'
        'uint8 dlc\n'),
}
_EXTRA_TOPICS = (  # topic, type, rate (Hz)
    ('/vehicle/wheel_speed_report', 'dbw_mkz_msgs/msg/WheelSpeedReport', 100.0),
    ('/can_bus_dbw/can_rx', 'dataspeed_can_msgs/msg/CanMessageStamped', 40.0),
    ('/vehicle/gps/fix', 'sensor_msgs/msg/NavSatFix', 1.0),
)


def steering_typestore(layout: str = '2016'):
    """Return a ROS 1 typestore with dbw_mkz_msgs/SteeringReport in `layout` ('2016'|'1.0.7')."""
    store = get_typestore(Stores.ROS1_NOETIC)
    store.register(get_types_from_msg(STEERING_LAYOUTS[layout], STEERING_REPORT_TYPE))
    for name, text in _EXTRA_TYPES.items():
        store.register(get_types_from_msg(text, name))
    if layout == '2016':
        md5 = store.generate_msgdef(STEERING_REPORT_TYPE)[1]
        assert md5 == STEERING_REPORT_MD5_2016, md5
    return store


def _embedded_definition(layout: str) -> str:
    """Return the message definition text as `rosbag record` embeds it (comments kept)."""
    header = get_typestore(Stores.ROS1_NOETIC).generate_msgdef('std_msgs/msg/Header')[0]
    return f'{STEERING_LAYOUTS[layout]}{"=" * 80}\nMSG: std_msgs/Header\n{header}'


@dataclass
class FixtureSpec:
    """What a fixture bag contains; times are relative to the first center frame."""

    frames: int = 40                      # center frames (20 Hz)
    cameras: tuple = ('center',)          # subset of ('center', 'left', 'right')
    layout: str = '2016'                  # SteeringReport layout: '2016' | '1.0.7'
    steering_hz: float = 50.0
    steering_start_s: float = 0.0         # steering record starts here (may be > 0: frames drop)
    steering_end_s: float | None = None   # and ends here (None: 0.1 s after the last frame)
    steering_gap_s: tuple | None = None   # (start_s, duration_s) without any steering report
    with_steering: bool = True
    with_camera_info: bool = True
    extra_topics: bool = True
    corrupt_frames: tuple = ()            # center frame indices whose JPEG bytes are garbage
    profile_csv: Path | None = None       # labels CSV (timestamp/filename, angle, speed columns)
    image_pool: int = 32                  # distinct JPEGs, reused cyclically (encoding is slow)
    jpeg_quality: int = 90
    start_ns: int = FIRST_STAMP_NS
    seed: int = 0


@dataclass
class FixtureTruth:
    """What was written: header stamps and values, to compare a conversion against."""

    camera_stamps_ns: dict = field(default_factory=dict)   # camera -> (n,) int64
    steering_stamps_ns: np.ndarray = None                  # (m,) int64
    steering_wheel_rad: np.ndarray = None                  # (m,) float32 values as written
    speed_mps: np.ndarray = None                           # (m,) float32
    jpeg: dict = field(default_factory=dict)               # camera -> list of bytes per frame


def road_image(i: int, angle_rad: float, rng: np.random.Generator) -> np.ndarray:
    """Draw a synthetic 640x480 BGR road view: sky, asphalt, lane lines bent by the steering."""
    w, h = IMAGE_SIZE_WH
    img = np.empty((h, w, 3), np.uint8)
    sky = np.linspace(230, 150, h // 2)
    img[:h // 2] = np.stack([sky + 10, sky, sky - 40], -1).clip(0, 255).astype(np.uint8)[:, None]
    img[h // 2:] = (95, 100, 98)
    rows = np.arange(h // 2, h)
    depth = (rows - h // 2 + 1) / (h // 2)
    bend = -angle_rad * 600 * (1 - depth) ** 2
    for x_far, x_near in ((300, 40), (340, 600), (320, 320)):
        xs = (x_far + (x_near - x_far) * depth + bend).astype(int)
        for dx in range(-2, 3):
            img[rows, np.clip(xs + dx, 0, w - 1)] = (230, 235, 235)
    cv2.rectangle(img, (40 + 37 * (i % 13), 200), (80 + 37 * (i % 13), 235), (40, 60, 90), -1)
    noise = rng.integers(-6, 7, img.shape, dtype=np.int16)
    return np.clip(img.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def _profile(spec: FixtureSpec):
    """Return f(t_s) -> (angle_rad, speed_mps): analytic, or interpolated from a labels CSV."""
    if spec.profile_csv is None:
        def analytic(t):
            t = np.asarray(t, np.float64)
            return 0.35 * np.sin(2 * np.pi * t / 9.0), 12.0 + 3.0 * np.sin(2 * np.pi * t / 23.0)
        return analytic
    with open(spec.profile_csv, newline='') as f:
        rows = list(csv.DictReader(f))
    if 'filename' in rows[0]:   # train_round2_*.csv: the exact stamp is in the file name
        stamps = np.array([int(Path(r['filename']).stem) for r in rows], np.int64)
    else:
        stamps = np.array([int(float(r['timestamp'])) for r in rows], np.int64)
    t_csv = (stamps - stamps[0]) / 1e9
    angle = np.array([float(r['angle']) for r in rows])
    speed = np.array([float(r['speed']) for r in rows])

    def from_csv(t):
        t = np.asarray(t, np.float64) % t_csv[-1]
        return np.interp(t, t_csv, angle), np.interp(t, t_csv, speed)
    return from_csv


def _stamps(start_ns: int, period_s: float, n: int, rng, jitter_s: float) -> np.ndarray:
    nominal = np.arange(n) * period_s + rng.uniform(-jitter_s, jitter_s, n)
    return start_ns + np.round(nominal * 1e9).astype(np.int64)


def _jpeg_pool(spec: FixtureSpec, profile, rng) -> list:
    pool = []
    for k in range(min(spec.image_pool, spec.frames)):
        angle, _ = profile(k / 20.0)
        ok, buf = cv2.imencode('.jpg', road_image(k, float(angle), rng),
                               [cv2.IMWRITE_JPEG_QUALITY, spec.jpeg_quality])
        assert ok
        pool.append(buf.tobytes())
    return pool


def _header(store, seq: int, stamp_ns: int, frame_id: str):
    t = store.types['builtin_interfaces/msg/Time'](sec=int(stamp_ns // 10**9),
                                                   nanosec=int(stamp_ns % 10**9))
    return store.types['std_msgs/msg/Header'](seq=seq, stamp=t, frame_id=frame_id)


def _camera_info(store, seq: int, stamp_ns: int, camera: str):
    T = store.types
    k = np.array([1.0e3, 0, 320, 0, 1.0e3, 240, 0, 0, 1], np.float64)
    p = np.array([1.0e3, 0, 320, 0, 0, 1.0e3, 240, 0, 0, 0, 1, 0], np.float64)
    return T['sensor_msgs/msg/CameraInfo'](
        header=_header(store, seq, stamp_ns, f'{camera}_camera'), height=480, width=640,
        distortion_model='plumb_bob', D=np.array([-0.3, 0.1, 0.0, 0.0, 0.0]), K=k,
        R=np.eye(3).ravel(), P=p, binning_x=0, binning_y=0,
        roi=T['sensor_msgs/msg/RegionOfInterest'](x_offset=0, y_offset=0, height=0, width=0,
                                                  do_rectify=False))


def _extra_message(store, msgtype: str, seq: int, stamp_ns: int, value: float):
    T = store.types
    header = _header(store, seq, stamp_ns, 'base_link')
    if msgtype == 'dbw_mkz_msgs/msg/WheelSpeedReport':
        return T[msgtype](header=header, front_left=value, front_right=value, rear_left=value,
                          rear_right=value)
    if msgtype == 'dataspeed_can_msgs/msg/CanMessageStamped':
        can = T['dataspeed_can_msgs/msg/CanMessage'](
            data=np.arange(8, dtype=np.uint8), id=0x65, extended=False, dlc=8)
        return T[msgtype](header=header, msg=can)
    status = T['sensor_msgs/msg/NavSatStatus'](status=0, service=1)
    return T[msgtype](header=header, status=status, latitude=37.4, longitude=-122.1,
                      altitude=10.0, position_covariance=np.zeros(9),
                      position_covariance_type=0)


def write_udacity_bag(path, spec: FixtureSpec = FixtureSpec()) -> FixtureTruth:
    """Write a Udacity-format ROS 1 bag at `path`; return the stamps and values written.

    Messages are written in receive-time order; receive time = header stamp + 3..12 ms.
    """
    path = Path(path)
    rng = np.random.default_rng(spec.seed)
    store = steering_typestore(spec.layout)
    profile = _profile(spec)
    pool = _jpeg_pool(spec, profile, rng)
    truth = FixtureTruth()
    events = []   # (receive_ns, order, topic, msgtype, message or raw bytes)
    duration_s = spec.frames / 20.0
    for c, cam in enumerate(spec.cameras):
        stamps = _stamps(spec.start_ns + c * 1_000_000, 0.05, spec.frames, rng, 0.002)
        truth.camera_stamps_ns[cam] = stamps
        truth.jpeg[cam] = []
        for i, stamp in enumerate(stamps):
            data = pool[(i + c) % len(pool)]
            if cam == 'center' and i in spec.corrupt_frames:
                data = data[:200] + bytes(rng.integers(0, 256, 3000, dtype=np.uint8))
            truth.jpeg[cam].append(data)
            lag = int(rng.integers(3_000_000, 12_000_000))
            msg = store.types['sensor_msgs/msg/CompressedImage'](
                header=_header(store, i, int(stamp), f'{cam}_camera'), format='jpeg',
                data=np.frombuffer(data, np.uint8))
            events.append((int(stamp) + lag, f'/{cam}_camera/image_color/compressed',
                           'sensor_msgs/msg/CompressedImage', msg))
            if spec.with_camera_info:
                events.append((int(stamp) + lag + 1000, f'/{cam}_camera/camera_info',
                               'sensor_msgs/msg/CameraInfo', _camera_info(store, i, int(stamp),
                                                                          cam)))
    if spec.with_steering:
        end_s = duration_s + 0.1 if spec.steering_end_s is None else spec.steering_end_s
        # 10 ms early, so that stamp jitter never puts the first camera frame before it.
        n = int((end_s - spec.steering_start_s + 0.01) * spec.steering_hz)
        rel = spec.steering_start_s - 0.01 + np.arange(n) / spec.steering_hz + rng.uniform(
            -0.002, 0.002, n)
        if spec.steering_gap_s is not None:
            g0, gd = spec.steering_gap_s
            rel = rel[(rel < g0) | (rel >= g0 + gd)]
        stamps = spec.start_ns + np.round(rel * 1e9).astype(np.int64)
        angle, speed = profile(rel)
        truth.steering_stamps_ns = stamps
        truth.steering_wheel_rad = np.asarray(angle, np.float32)
        truth.speed_mps = np.asarray(speed, np.float32)
        fields = {f[0] for f in store.fielddefs[STEERING_REPORT_TYPE][1]}
        for i, stamp in enumerate(stamps):
            values = dict(header=_header(store, i, int(stamp), ''),
                          steering_wheel_angle=truth.steering_wheel_rad[i],
                          steering_wheel_angle_cmd=np.float32(0.0),
                          steering_wheel_torque=np.float32(0.1), speed=truth.speed_mps[i],
                          enabled=False, override=False, fault_wdc=False, fault_bus1=False,
                          fault_bus2=False, fault_calibration=False)
            values.update({k: False for k in ('driver', 'fault_connector', 'timeout')
                           if k in fields})
            events.append((int(stamp) + int(rng.integers(1_000_000, 4_000_000)),
                           STEERING_REPORT_TOPIC, STEERING_REPORT_TYPE,
                           store.types[STEERING_REPORT_TYPE](**values)))
    if spec.extra_topics:
        for topic, msgtype, hz in _EXTRA_TOPICS:
            for i in range(int(duration_s * hz)):
                stamp = spec.start_ns + int(i * 1e9 / hz)
                events.append((stamp + 500_000, topic, msgtype,
                               _extra_message(store, msgtype, i, stamp, 10.0)))
    events.sort(key=lambda e: e[0])
    path.parent.mkdir(parents=True, exist_ok=True)
    with Writer(path) as writer:
        conns = {}
        for receive_ns, topic, msgtype, msg in events:
            if topic not in conns:
                if msgtype == STEERING_REPORT_TYPE:
                    md5 = store.generate_msgdef(msgtype)[1]
                    conns[topic] = writer.add_connection(
                        topic, msgtype, msgdef=_embedded_definition(spec.layout), md5sum=md5,
                        callerid='/dbw_node')
                else:
                    conns[topic] = writer.add_connection(topic, msgtype, typestore=store)
            writer.write(conns[topic], receive_ns, store.serialize_ros1(msg, msgtype))
    return truth


def write_ch2_001_folder(folder, frames: int = 30, csv_name: str = 'HMB_3_ground_truth.csv',
                         with_speed: bool = False, seed: int = 0) -> FixtureTruth:
    """Write the CH2_001 layout: center/<stamp_ns>.jpg, a CSV frame_id,steering_angle[,public].

    With `with_speed` the CSV also has a `speed` column (m/s), which the real release lacks.
    Also writes final_example.csv (the release's template, dummy angles), as the release does.
    """
    folder = Path(folder)
    (folder / 'center').mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    spec = FixtureSpec(frames=frames, seed=seed)
    profile = _profile(spec)
    pool = _jpeg_pool(spec, profile, rng)
    stamps = _stamps(spec.start_ns, 0.05, frames, rng, 0.002)
    angle, speed = profile((stamps - stamps[0]) / 1e9)
    truth = FixtureTruth(camera_stamps_ns={'center': stamps}, steering_stamps_ns=stamps,
                         steering_wheel_rad=angle, speed_mps=speed, jpeg={'center': []})
    for i, stamp in enumerate(stamps):
        data = pool[i % len(pool)]
        (folder / 'center' / f'{stamp}.jpg').write_bytes(data)
        truth.jpeg['center'].append(data)
    with open(folder / csv_name, 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['frame_id', 'steering_angle', 'public'] + (['speed'] if with_speed else []))
        for i, stamp in enumerate(stamps):
            w.writerow([int(stamp), repr(float(angle[i])), i % 2]
                       + ([repr(float(speed[i]))] if with_speed else []))
    with open(folder / 'final_example.csv', 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['frame_id', 'steering_angle'])
        w.writerows([int(s), 0] for s in stamps)
    return truth


def write_interpolated_folder(folder, frames: int = 30, cameras=('center', 'left'),
                              seed: int = 0) -> FixtureTruth:
    """Write rwightman's udacity-driving-reader output: interpolated.csv + <camera>/<stamp>.jpg."""
    folder = Path(folder)
    rng = np.random.default_rng(seed)
    spec = FixtureSpec(frames=frames, seed=seed)
    profile = _profile(spec)
    pool = _jpeg_pool(spec, profile, rng)
    truth = FixtureTruth(jpeg={})
    rows = []
    for c, cam in enumerate(cameras):
        (folder / cam).mkdir(parents=True, exist_ok=True)
        stamps = _stamps(spec.start_ns + c * 1_000_000, 0.05, frames, rng, 0.002)
        truth.camera_stamps_ns[cam] = stamps
        truth.jpeg[cam] = []
        angle, speed = profile((stamps - spec.start_ns) / 1e9)
        for i, stamp in enumerate(stamps):
            data = pool[(i + c) % len(pool)]
            (folder / cam / f'{stamp}.jpg').write_bytes(data)
            truth.jpeg[cam].append(data)
            rows.append((int(stamp), cam, float(angle[i]), float(speed[i])))
    rows.sort()
    with open(folder / 'interpolated.csv', 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['index', 'timestamp', 'width', 'height', 'frame_id', 'filename', 'angle',
                    'torque', 'speed', 'lat', 'long', 'alt'])
        for i, (stamp, cam, a, v) in enumerate(rows):
            w.writerow([i, stamp, 640, 480, f'{cam}_camera', f'{cam}/{stamp}.jpg', repr(a),
                        0.1, repr(v), 37.4, -122.1, 10.0])
    return truth
