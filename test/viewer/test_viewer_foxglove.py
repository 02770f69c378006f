"""The Foxglove bridge as the Foxglove app sees it: the foxglove.sdk.v1 WebSocket protocol.

A client on 127.0.0.1 reads the advertised channels (Foxglove schemas for pictures and logs,
JSON schemas for the command and status), subscribes, and decodes what the hub was fed.
"""

import asyncio
import json
import struct
import time

import numpy as np
import pytest

aiohttp = pytest.importorskip('aiohttp', reason='aiohttp is not installed (requirements.txt)')
pytest.importorskip('foxglove', reason='foxglove-sdk is not installed (requirements.txt)')

from signattn_driver.viewer.config import ViewerConfig, ViewerError  # noqa: E402
from signattn_driver.viewer.foxglove_bridge import FoxgloveBridge  # noqa: E402
from signattn_driver.viewer.frames import make_frame  # noqa: E402
from signattn_driver.viewer.hub import StreamHub  # noqa: E402
from signattn_driver.viewer.status import NodeStatusTracker  # noqa: E402

SUBPROTOCOL = 'foxglove.sdk.v1'
MESSAGE_DATA = 0x01   # binary opcode: uint32 subscription id, uint64 log time, payload
STAMP_NS = 1_600_000_000_050_000_000


@pytest.fixture
def bridge():
    hub = StreamHub()
    bridge = FoxgloveBridge(hub, ViewerConfig(foxglove_port=0)).start()
    yield hub, bridge
    bridge.stop()


async def _channels(ws) -> dict:
    """Read control messages until every channel is advertised: topic -> channel."""
    channels = {}
    deadline = time.monotonic() + 10
    while len(channels) < 6:
        message = await ws.receive(timeout=max(0.01, deadline - time.monotonic()))
        data = json.loads(message.data)
        if data['op'] == 'advertise':
            channels.update({c['topic']: c for c in data['channels']})
    return channels


async def _data(ws, subscription: int) -> bytes:
    while True:
        message = await ws.receive(timeout=10)
        if message.type == aiohttp.WSMsgType.BINARY and message.data[0] == MESSAGE_DATA:
            sub, _ = struct.unpack_from('<IQ', message.data, 1)
            if sub == subscription:
                return message.data[13:]


def test_channels_carry_foxglove_schemas_and_the_hub_data(bridge):
    hub, server = bridge

    async def watch():
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(server.url, protocols=(SUBPROTOCOL,)) as ws:
                channels = await _channels(ws)
                subscriptions = [{'id': i, 'channelId': channels[topic]['id']} for i, topic in
                                 enumerate(('/steering/command', '/drive_node/status',
                                            '/attention'), start=1)]
                await ws.send_str(json.dumps({'op': 'subscribe',
                                              'subscriptions': subscriptions}))
                deadline = time.monotonic() + 10
                while not server.wants('attention') and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                assert server.wants('attention') and not server.wants('contribution')
                hub.put_command(STAMP_NS, -0.0125, -1.5)
                command = json.loads(await _data(ws, 1))
                hub.put_state('status', NodeStatusTracker().update(
                    1, 'no frame for 3.0 s', {'frames_processed': '7'}, 1.0))
                status = json.loads(await _data(ws, 2))
                frame = make_frame('attention', STAMP_NS, np.full((48, 64, 3), 90, np.uint8),
                                   80)
                hub.put_frame(frame)
                image = await _data(ws, 3)
                return channels, command, status, frame, image
    channels, command, status, frame, image = asyncio.run(watch())
    assert channels['/attention']['schemaName'] == 'foxglove.CompressedImage'
    assert channels['/attention/contribution']['schemaName'] == 'foxglove.CompressedImage'
    assert channels['/drive_node/log']['schemaName'] == 'foxglove.Log'
    assert channels['/steering/command']['schemaName'] == 'signattn_driver.SteeringCommand'
    assert channels['/steering/command']['encoding'] == 'json'
    assert command == {'timestamp': {'sec': 1_600_000_000, 'nsec': 50_000_000},
                       'inverse_radius_per_m': -0.0125, 'steering_wheel_deg': -1.5}
    assert status['level'] == 'WARN' and status['frames_processed'] == 7
    assert frame.jpeg in image and b'jpeg' in image   # protobuf: data and format fields


def test_a_busy_port_is_one_clear_error(bridge):
    hub, server = bridge
    with pytest.raises(ViewerError, match=f'Foxglove server on 127.0.0.1:{server.port}'):
        FoxgloveBridge(hub, ViewerConfig(foxglove_port=server.port)).start()
