"""Arrow arrays made from numpy arrays and Python lists by their buffers, not by ``pa.array``.

Why: ``pa.array`` (and every call that converts a Python or numpy value for Arrow: ``take`` of a numpy index,
``fill_null(False)``) first asks whether the value is a pandas object, which imports pandas, and so does
``np.asarray`` of an Arrow array (its C++ conversion): 0.15 s of a 4 s build of 30,000 raw questions, at its
start, where the first batch waits for it. :func:`values`, :func:`filled` and :func:`int_values` read integer
and boolean arrays back as numpy from their buffers instead. The raw reader and the dataset
writer need only these few shapes, and a shape built here is the array ``pa.array`` makes (the tests compare them),
so the dataset's bytes do not change. An input these cannot take exactly (a ``None`` in a list of strings, text
that is not encodable UTF-8, more than 2 GiB) goes to ``pa.array``, which gives what it gave before, or its error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: Largest int32 offset: the most bytes of a ``string`` array, the most elements of a ``list`` array's values.
MAX_OFFSET = (1 << 31) - 1


def ints(values: Any, mask: Any = None) -> Any:
    """An int64 array of ``values`` (numpy or a list of ints); ``mask``: numpy booleans, True where null."""
    import numpy as np
    import pyarrow as pa

    data = np.ascontiguousarray(values, dtype=np.int64)
    if mask is None or not mask.any():
        return pa.Array.from_buffers(pa.int64(), len(data), [None, pa.py_buffer(data)])
    return pa.Array.from_buffers(pa.int64(), len(data), [_bitmap(~mask), pa.py_buffer(data)],
                                 null_count=int(mask.sum()))


def bools(values: Any) -> Any:
    """A boolean array of numpy booleans (or a list of bools), no nulls."""
    import numpy as np
    import pyarrow as pa

    data = np.asarray(values, dtype=bool)
    return pa.Array.from_buffers(pa.bool_(), len(data), [None, _bitmap(data)])


def offsets(lengths: Sequence[int]) -> Any:
    """The int32 offsets of lists of these lengths (``0, l0, l0 + l1, ...``), for ``pa.ListArray.from_arrays``."""
    import pyarrow as pa

    ends = _offsets(lengths)
    if ends[-1] > MAX_OFFSET:
        raise OverflowError(f"{ends[-1]} list elements do not fit int32 offsets")
    return pa.Array.from_buffers(pa.int32(), len(ends), [None, pa.py_buffer(ends.astype("int32"))])


def strings(values: Sequence[str]) -> Any:
    """A ``string`` array of Python strings (no ``None``; else, or past 2 GiB, what ``pa.array`` makes)."""
    import numpy as np
    import pyarrow as pa

    try:
        joined = "".join(values)
        data = joined.encode("utf-8")
    except (TypeError, UnicodeEncodeError):  # a None or a lone surrogate: pa.array's own answer
        return pa.array(values, pa.string())
    if len(data) > MAX_OFFSET:
        return pa.array(values, pa.string())
    n = len(values)
    if len(data) == len(joined):  # ASCII: a character is a byte
        lengths = np.fromiter(map(len, values), dtype=np.int64, count=n)
    else:
        lengths = np.fromiter((len(v) if v.isascii() else len(v.encode("utf-8")) for v in values), dtype=np.int64,
                              count=n)
    return pa.StringArray.from_buffers(n, pa.py_buffer(_offsets(lengths).astype(np.int32)), pa.py_buffer(data))


def filled(arr: Any, null: bool) -> Any:
    """Numpy booleans of a boolean array, ``null`` where it is null (``np.asarray(arr.fill_null(null))``)."""
    import numpy as np

    values = _bits(arr.buffers()[1], arr.offset, len(arr))
    if not arr.null_count:
        return values
    valid = _bits(arr.buffers()[0], arr.offset, len(arr))
    return np.where(valid, values, null)


def values(arr: Any) -> Any:
    """The numpy array of an integer or boolean array without nulls (``np.asarray(arr)``; a view for integers)."""
    import pyarrow as pa

    if arr.null_count:
        raise ValueError("an array with nulls has no plain numpy values")
    if pa.types.is_boolean(arr.type):
        return _bits(arr.buffers()[1], arr.offset, len(arr))
    return _ints(arr)


def int_values(arr: Any, null: int) -> Any:
    """Numpy int64 of an integer array, ``null`` where it is null (``np.asarray(arr.fill_null(null))``)."""
    import numpy as np

    if not arr.null_count:
        return _ints(arr).astype(np.int64)
    return np.where(_bits(arr.buffers()[0], arr.offset, len(arr)), _ints(arr), null).astype(np.int64)


def _ints(arr: Any) -> Any:
    """The values buffer of an integer array as numpy (a read-only view, nulls' slots included)."""
    import numpy as np
    import pyarrow as pa

    if not pa.types.is_integer(arr.type):
        raise TypeError(f"expected an integer array, got {arr.type}")
    width = np.dtype(f"{'int' if pa.types.is_signed_integer(arr.type) else 'uint'}{arr.type.bit_width}")
    if len(arr) == 0:
        return np.zeros(0, dtype=width)
    return np.frombuffer(arr.buffers()[1], dtype=width, count=arr.offset + len(arr))[arr.offset:]


def _offsets(lengths: Any) -> Any:
    """int64 ``0, l0, l0 + l1, ...`` of a sequence of lengths."""
    import numpy as np

    out = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=out[1:])
    return out


def _bitmap(flags: Any) -> Any:
    """Arrow's bitmap of numpy booleans (least significant bit first, zero padded)."""
    import numpy as np
    import pyarrow as pa

    return pa.py_buffer(np.packbits(flags, bitorder="little"))


def _bits(buffer: Any, offset: int, n: int) -> Any:
    """``n`` booleans of an Arrow bitmap from bit ``offset``."""
    import numpy as np

    if n == 0:
        return np.zeros(0, dtype=bool)
    raw = np.frombuffer(buffer, dtype=np.uint8, count=(offset + n + 7) // 8)
    return np.unpackbits(raw, bitorder="little", count=offset + n)[offset:].astype(bool)
