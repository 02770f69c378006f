"""MetaDrive simulation (optional extra): adapter, lane masks, recording, closed loop."""
