import sys
from pathlib import Path

# the explicit density-matrix reference and the event-by-event memory reference live beside the tests
sys.path.insert(0, str(Path(__file__).parent))
