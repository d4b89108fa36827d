"""Chinese word segmentation for the hot spots: jieba with hcp's dictionary and stopwords.

jieba's own dictionary ships inside its package; ``data/userdict.txt`` adds the words of
government service that must stay whole (不动产登记, 营业执照, 一窗通办, 跑两趟), and
``data/stopwords.txt`` lists words that never become terms (的, 了, 我, 满意, ...).
Nothing is downloaded. The tokenizer is built once per process, on first use, so a web
process that never segments never pays the second or two it takes to load.
"""
from __future__ import annotations

import functools
import logging
import re
import threading
from pathlib import Path

DATA = Path(__file__).with_name("data")
USER_DICT = DATA / "userdict.txt"
STOPWORDS = DATA / "stopwords.txt"
MAX_TERM = 32  # the width of insight_terms.term
MAX_TEXT = 2000  # characters segmented per text: a comment longer than this says no more
BLOCK_CACHE = 4096  # blocks whose terms a process keeps (each a few words: well under 2 MB)
# A term has a Han character or a latin letter; digits and punctuation alone are not words.
_WORDLIKE = re.compile(r"[\u4e00-\u9fffA-Za-z]")

_lock = threading.Lock()
_tokenizer = None
_stopwords: frozenset[str] | None = None


def stopwords() -> frozenset[str]:
    """The stopword list of data/stopwords.txt."""
    global _stopwords
    if _stopwords is None:
        lines = (line.strip() for line in STOPWORDS.read_text(encoding="utf-8").splitlines())
        _stopwords = frozenset(w for w in lines if w and not w.startswith("#"))
    return _stopwords


def tokenizer():
    """This process's jieba tokenizer with the user dictionary loaded (built on first call)."""
    global _tokenizer
    if _tokenizer is None:
        with _lock:  # two threads of one process must not both build it
            if _tokenizer is None:
                import jieba

                logging.getLogger("jieba").setLevel(logging.WARNING)  # it logs its load at DEBUG
                tk = jieba.Tokenizer()
                tk.initialize()
                tk.load_userdict(str(USER_DICT))
                _tokenizer = tk
    return _tokenizer


def terms(text: str | None) -> set[str]:
    """The distinct terms of ``text``: dictionary words of two or more characters, no stopwords.

    HMM (jieba's guessing of words not in any dictionary) is off: it is what turns a
    stranger's name into a "word", and a term should be a word of the dictionaries.
    """
    if not text:
        return set()
    out = set()
    # jieba cuts a text block by block (runs of its word characters, split at punctuation and
    # spaces; what lies between yields single characters, never a term), so the terms of a text
    # are the union of its blocks' terms — and a block repeats far more often than a whole
    # comment does ("材料不全" in many comments), so each block's terms are kept (_block_terms).
    import jieba  # loaded once (tokenizer()); its own block pattern, so the cache is exact

    for block in jieba.re_han_default.findall(text[:MAX_TEXT]):
        # A block without a Han character or a latin letter holds no term (every word is a
        # piece of its block): a number ("（1234）") is not cut, nor kept in the cache.
        if _WORDLIKE.search(block):
            out |= _block_terms(block)
    return out


@functools.lru_cache(maxsize=BLOCK_CACHE)
def _block_terms(block: str) -> frozenset[str]:
    """The terms of one jieba block (a run of word characters)."""
    stop = stopwords()
    out = set()
    for word in tokenizer().cut(block, HMM=False):
        word = word.strip().lower()
        if len(word) >= 2 and len(word) <= MAX_TERM and word not in stop and _WORDLIKE.search(word):
            out.add(word)
    return frozenset(out)
