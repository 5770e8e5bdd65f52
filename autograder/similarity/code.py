"""Code evidence: winnowing fingerprints of each student's own code cells (Schleimer, Wilkerson and Aiken 2003, the
algorithm MOSS uses), through the maintained library ``copydetect``.

``copydetect`` tokenises the code with Pygments and replaces every name by ``V``/``F``/``O`` and every string by
``S`` and drops comments and whitespace, so renaming and reformatting change nothing; it winnows k-gram hashes, finds
the overlapping fingerprints of two documents and maps them back to character ranges for highlighting. Its k-gram
hashes come from Python's ``hash()``, which is salted per process; ours come from ``stable_kgram_hashes`` (a
polynomial hash finished by SplitMix64), so a fingerprint means the same thing in every run and on every machine.

What every student received is never evidence: the fingerprints of every code cell of the release notebook are
boilerplate, removed from each student's fingerprints before anything is compared.

The class-wide comparison is one sparse matrix product (students × fingerprints): the shared fingerprint count of
every pair at once, without a loop over pairs. Only pairs worth showing are compared in full (highlighting).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Noise threshold k (tokens of the filtered text) and guarantee threshold t of the winnowing: copydetect's defaults
# (``copydetect.defaults``); a match shorter than k characters of filtered code is never evidence.
NOISE_K = 25
GUARANTEE_T = 30
_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)
_BASE = np.uint64(1_000_003)


def stable_kgram_hashes(text: str, k: int = NOISE_K) -> np.ndarray:
    """The hash of every k-gram of ``text`` (int64, one per start offset), the same in every process.

    A polynomial hash over the code points (wrapping at 2**64) finished by SplitMix64, so the window minimum that
    winnowing selects is spread evenly over the text."""
    if len(text) < k:
        return np.zeros(0, dtype=np.int64)
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    n = len(codes) - k + 1
    h = np.zeros(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for i in range(k):
            h = h * _BASE + codes[i:i + n]
        h ^= h >> np.uint64(30)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(27)
        h *= np.uint64(0x94D049BB133111EB)
        h ^= h >> np.uint64(31)
    return h.view(np.int64)


@dataclass
class CodeFingerprint:
    """One student's code as ``copydetect.detector.compare_files`` reads it (the same attributes as its own
    ``CodeFingerprint``), made with stable hashes.

    Attributes:
        raw_code: the student's code cells, each under a ``# --- <grade id>`` line.
        filtered_code: copydetect's filtered text (names as V/F/O, strings as S, no comments or whitespace).
        offsets: copydetect's map from filtered positions back to ``raw_code``.
        hashes: the winnowed fingerprints left after removing the boilerplate.
        hash_idx: fingerprint → its start offsets in ``filtered_code``.
        token_coverage: filtered characters covered by those fingerprints.
    """

    raw_code: str
    filtered_code: str
    offsets: np.ndarray
    hashes: set
    hash_idx: dict
    token_coverage: float
    k: int = NOISE_K
    filename: str = "cells.py"
    cells: dict = field(default_factory=dict)


def filtered(code: str) -> tuple[str, np.ndarray]:
    """copydetect's filter: Python tokens with names, strings and comments normalised away."""
    from copydetect.utils import filter_code

    return filter_code(code, "cells.py", language="python")


def boilerplate_hashes(code_cells: list[str]) -> np.ndarray:
    """Every k-gram hash of the code everyone received (not only the winnowed ones, so no window choice can let a
    piece of the handout through)."""
    hashes = [stable_kgram_hashes(filtered(code)[0]) for code in code_cells if code.strip()]
    return np.unique(np.concatenate(hashes)) if hashes else np.zeros(0, dtype=np.int64)


def fingerprint(cells: dict[str, str], boilerplate: np.ndarray) -> CodeFingerprint:
    """The fingerprint of a student's code cells (grade id → source), boilerplate removed (copydetect's
    ``get_document_fingerprints`` with stable hashes)."""
    from copydetect.utils import get_token_coverage, winnow

    raw = "".join(f"# --- {gid}\n{source.rstrip()}\n\n" for gid, source in cells.items())
    text, offsets = filtered(raw)
    all_hashes = stable_kgram_hashes(text)
    if len(all_hashes):
        hashes, idx = winnow(all_hashes, window_size=GUARANTEE_T - NOISE_K + 1, remove_duplicates=False)
    else:
        hashes, idx = all_hashes, np.zeros(0, dtype=np.int64)
    keep = ~np.isin(hashes, boilerplate)
    hashes, idx = hashes[keep], idx[keep]
    hash_idx: dict = {}
    for value, i in zip(hashes.tolist(), idx.tolist()):
        hash_idx.setdefault(value, []).append(i)
    return CodeFingerprint(raw, text, offsets, set(hash_idx), hash_idx,
                           float(get_token_coverage(hash_idx, NOISE_K, len(text))), cells=dict(cells))


def shared_fingerprints(prints: list[CodeFingerprint]):
    """(shared, sizes): ``shared[i, j]`` the number of fingerprints students i and j have in common, for every pair
    at once (a sparse students × fingerprints matrix times its transpose), and ``sizes[i]`` student i's count."""
    from scipy import sparse

    vocabulary: dict[int, int] = {}
    rows, cols = [], []
    for i, fp in enumerate(prints):
        for value in fp.hashes:
            rows.append(i)
            cols.append(vocabulary.setdefault(value, len(vocabulary)))
    matrix = sparse.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)),
                               shape=(len(prints), max(len(vocabulary), 1)))
    shared = (matrix @ matrix.T).toarray()
    return shared, np.diag(shared).copy()


def containment(shared: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """The code score of every pair: the share of the smaller document's fingerprints found in the other one
    (0 when either has none). A copy that adds code of its own keeps the original inside it."""
    smaller = np.minimum.outer(sizes, sizes)
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.where(smaller > 0, shared / np.maximum(smaller, 1), 0.0)
    np.fill_diagonal(score, 0.0)
    return score


@dataclass(frozen=True)
class CodeMatch:
    """A pair compared in full by copydetect: shared tokens, each side's share, and the highlighted HTML."""

    tokens: int
    share_a: float
    share_b: float
    html_a: str
    html_b: str


def compare(a: CodeFingerprint, b: CodeFingerprint) -> CodeMatch:
    """copydetect's ``compare_files`` on two fingerprints, and each side's code as HTML (escaped, matching code
    in ``<mark>``)."""
    from copydetect.detector import compare_files
    from copydetect.utils import highlight_overlap
    from markupsafe import escape

    tokens, (share_a, share_b), (slices_a, slices_b) = compare_files(a, b)

    def html(fp: CodeFingerprint, slices) -> str:
        if tokens == 0 or len(slices[0]) == 0:
            return str(escape(fp.raw_code))
        marked, _ = highlight_overlap(fp.raw_code, np.asarray(slices, dtype=int), "<mark>", "</mark>",
                                      escape_html=True)
        return marked

    return CodeMatch(int(tokens), float(share_a), float(share_b), html(a, slices_a), html(b, slices_b))
