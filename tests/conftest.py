import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def pytest_configure(config):
    """Prompts are read in fp32 unless a test asks for bfloat16 (``ADVISOR_PROMPT_PRECISION``),
    so that results do not depend on whether the test machine has AMX."""
    import os

    os.environ.setdefault("ADVISOR_PROMPT_PRECISION", "fp32")
