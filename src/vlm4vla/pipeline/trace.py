"""Which config keys a spec reads, found by running it (DVC's `params:` of each stage).

A spec (specs.py) is the config slice a stage's result depends on; Snakemake compares it
whole. DVC instead needs the dotted keys behind it. Rather than a second, hand-kept list
per spec (which drifts: a new result-changing key re-runs under one tool and not the
other), `read_keys` runs the spec on a config that records what is read:

- reading a scalar or list value records its key (`train.lr`);
- a sub-section that ends up in the spec as it is records the whole section (`vqa.eval`);
- iterating over a section records that its key set matters: if nothing below it was read,
  the whole section is recorded (`sorted(cfg["vqa"]["tasks"])` -> `vqa.tasks`);
- a section the spec copied (`dict(s)`, `{**s}`, `s.items()`) and so read entirely is
  recorded as a whole (`train`, not `train.lr`, `train.steps`, ...): a key added to it
  changes the copy. A section filtered with `without()` stays per key, so a key it drops
  (a label such as `paper_name`) can be added without re-running anything; one indexed
  section (one benchmark) never stands for its parent (`benchmarks`).

So a key outside the result cannot change the spec (tests/test_pipeline_runs.py checks
that on every stage of the tiny config by perturbing each key), and DVC re-runs a stage
for a key change exactly when Snakemake does. Spec code drops keys with `without()` or
keeps some with `pick()`, never by reading a section's `.items()` and filtering (which
reads every value).
"""

from __future__ import annotations

from typing import Callable, Iterable


def without(section: dict, keys: Iterable[str]) -> dict:
    """`section` minus `keys`, reading only the kept values."""
    drop = set(keys)
    return {k: section[k] for k in section if k not in drop}


def pick(section: dict, keys: Iterable[str]) -> dict:
    """The `keys` that `section` has, reading only those."""
    return {k: section[k] for k in keys if k in section}


class _Reads:
    def __init__(self):
        self.values: set[str] = set()  # keys whose value was read
        self.keysets: set[str] = set()  # sections whose key names were iterated
        self.copied: set[str] = set()  # sections read through keys()/items(): dict(s), {**s}


def _join(path: str, key) -> str:
    return f"{path}.{key}" if path else str(key)


class _Traced(dict):
    """A config section that records its reads into a shared _Reads."""

    def __init__(self, data: dict, path: str, reads: _Reads):
        super().__init__(data)
        self._path, self._reads = path, reads

    def _wrap(self, key, value):
        path = _join(self._path, key)
        if isinstance(value, dict):
            return _Traced(value, path, self._reads)
        self._reads.values.add(path)
        return value

    def __getitem__(self, key):
        return self._wrap(key, super().__getitem__(key))

    def get(self, key, default=None):
        return self[key] if dict.__contains__(self, key) else default

    def _iterated(self) -> None:
        self._reads.keysets.add(self._path)

    def _copied(self) -> None:
        self._reads.keysets.add(self._path)
        self._reads.copied.add(self._path)

    def __iter__(self):  # key names (without() iterates this way, then reads what it keeps)
        self._iterated()
        return iter(list(dict.keys(self)))

    def keys(self):  # dict(section) and {**section} call keys() and __getitem__: a copy
        self._copied()
        return list(dict.keys(self))

    def items(self):
        self._copied()
        return [(k, self[k]) for k in dict.keys(self)]

    def values(self):
        return [v for _, v in self.items()]

    def __len__(self):
        self._iterated()
        return dict.__len__(self)

    def __deepcopy__(self, memo):  # a spec that copies a section depends on all of it
        import copy
        self._reads.values.add(self._path)
        return copy.deepcopy(dict(dict.items(self)), memo)


def _sections_in(obj) -> Iterable[str]:
    """Paths of the traced sections that a spec's result holds as they are."""
    if isinstance(obj, _Traced):
        yield obj._path
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _sections_in(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _sections_in(v)


def _collapse(node, path: str, keys: set[str], copied: set[str]) -> bool:
    """Record as a whole (in `keys`) each section the spec copied and read entirely; True when
    `path` is recorded (itself or all of it below)."""
    if path in keys:
        return True
    if not isinstance(node, dict) or not node:
        return False
    whole = all([_collapse(node[k], _join(path, k), keys, copied) for k in sorted(node)])
    if whole and path in copied and path:
        keys.difference_update({k for k in keys if k.startswith(path + ".")})
        keys.add(path)
    return whole and path in keys


def read_keys(spec_fn: Callable[..., dict], cfg: dict, *args) -> list[str]:
    """The dotted config keys `spec_fn(cfg, *args)` depends on, sorted."""
    reads = _Reads()
    result = spec_fn(_Traced(cfg, "", reads), *args)
    keys = set(reads.values) | set(_sections_in(result))
    for section in reads.keysets:
        if section and not any(k == section or k.startswith(section + ".") for k in keys):
            keys.add(section)
    # a key below a recorded section is implied by it
    keys = {k for k in keys if not any(k.startswith(o + ".") for o in keys)}
    _collapse(cfg, "", keys, reads.copied)
    return sorted(keys)
