"""Type stubs of lamar's native module (lamar-core through PyO3). Use the `lamar` package's
functions: they take and return Python values; these take and return JSON text."""

from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

__version__: str

class LamarError(ValueError):
    """An input lamar-core refused; the message is the one the CLI prints."""

def encode(raw_text: str, spans: Sequence[Tuple[int, int, int]]) -> str: ...
def decode(raw_text: str, tagged: str, reference: bool = False) -> str: ...

class Scorer:
    def __init__(
        self,
        gold_dir: str,
        raw_text_dir: str,
        stats_csv: Optional[str] = None,
        split: Optional[str] = None,
        nltk: str = "3.9",
        token_f1: str = "official",
    ) -> None: ...
    def score(
        self, predictions: Union[str, List[Dict[str, Any]]], source: str = "predictions"
    ) -> str: ...

def vote(
    voter: str,
    models: Sequence[Union[str, List[Dict[str, Any]]]],
    params: Optional[str] = None,
    boundary: str = "joint",
) -> List[Dict[str, Any]]: ...
def voter_names() -> List[str]: ...
def reward(
    name: str, completions: Sequence[str], gold: Sequence[str], raw_text: Sequence[str]
) -> List[float]: ...
def reward_names() -> List[str]: ...
def synth(
    docs: int = 60, seed: int = 7, out: Optional[str] = None, simulate_models: int = 0
) -> str: ...
