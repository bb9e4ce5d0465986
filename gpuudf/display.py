"""What ``Context.display`` shows: a dataset's diagnostics and a UDF's buffers on it.

Policy: nothing is read and nothing runs.  The dataset describes itself
(:meth:`DataSet.get_diagnostics`); a UDF is copied, and the copy is prepared
as a run prepares its host copy (:func:`gpuudf.planning.give_host_meta`), so
the method, dtypes and shapes shown are those a run would use.  The user's
UDF object is left untouched.  The HTML is escaped throughout.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gpuudf.buffers import validate_declarations
from gpuudf.datasets import DataSet
from gpuudf.planning import give_host_meta
from gpuudf.roi import normalize_roi
from gpuudf.udf import UDF, process_method_of

__all__ = ["DisplayInfo", "InfoTable", "describe"]

#: Columns of the result-buffer table (LiberTEM's, and the flat ``raw_data`` shape).
BUFFER_COLUMNS = ("Name", "Kind", "Extra shape", "Concrete shape", "raw_data shape", "dtype")


@dataclass(frozen=True)
class InfoTable:
    """One table: ``header`` names the columns; without one, rows are ``(name, value)`` pairs."""

    title: str
    rows: tuple[tuple[str, ...], ...]
    header: tuple[str, ...] = ()
    note: str = ""

    def html(self) -> str:
        """The table as escaped HTML, under an ``<h3>`` title."""
        parts = [f"<h3>{_e(self.title)}</h3>"]
        if self.note:
            parts.append(f"<p>{_e(self.note)}</p>")
        parts.append("<table>")
        if self.header:
            parts.append("<thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in self.header) + "</tr></thead>")
            body = ["<tr>" + "".join(f"<td>{_e(cell)}</td>" for cell in row) + "</tr>" for row in self.rows]
        else:
            body = [f"<tr><th>{_e(name)}</th><td>{_e(value)}</td></tr>" for name, value in self.rows]
        parts.extend(["<tbody>", *body, "</tbody>", "</table>"])
        return "\n".join(parts)

    def text(self) -> str:
        """The table as aligned plain text, under its title."""
        rows = [self.header, *self.rows] if self.header else list(self.rows)
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))] if rows else []
        lines = [self.title]
        if self.note:
            lines.append(f"  ({self.note})")
        aligned = ("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows)
        lines.extend(f"  {line}".rstrip() for line in aligned)
        return "\n".join(lines)


class DisplayInfo:
    """What :meth:`Context.display` returns: tables that notebooks show as HTML.

    Attributes
    ----------
    title
        The dataset's class name, and the UDF's where one is given.
    tables
        The dataset's diagnostics first, then (with a UDF) its general
        facts and its result buffers.
    """

    def __init__(self, title: str, tables: Sequence[InfoTable]) -> None:
        self.title = title
        self.tables = tuple(tables)

    def _repr_html_(self) -> str:
        return "\n".join([f"<h2>{_e(self.title)}</h2>", *(t.html() for t in self.tables)])

    def __str__(self) -> str:
        return "\n\n".join([self.title, *(t.text() for t in self.tables)])

    def __repr__(self) -> str:
        return str(self)


def describe(dataset: DataSet, udf: UDF | None = None, roi: Any = None, min_partitions: int = 1) -> DisplayInfo:
    """The tables of :class:`DisplayInfo` for ``dataset``, and ``udf`` run on it with ``roi``.

    Parameters
    ----------
    dataset
        From ``Context.load``.
    udf
        A UDF instance (left untouched), or ``None`` for the dataset alone.
    roi
        Any ROI ``run_udf`` takes; it sets the ``raw_data`` shape of ``nav`` buffers.
    min_partitions
        The executor's minimum partition count, so partitions are shown as a
        run makes them.

    Raises
    ------
    TypeError
        For a dataset or UDF of the wrong type.
    UDFDefinitionError
        Where a run would refuse the UDF (buffers, process method, dtype).
    ValueError
        For a ROI that does not fit the dataset.
    """
    if not isinstance(dataset, DataSet):
        msg = f"dataset must come from Context.load, got {type(dataset).__name__}"
        raise TypeError(msg)
    tables = [InfoTable("Dataset", tuple(dataset.get_diagnostics(min_partitions)))]
    flat_roi = normalize_roi(roi, dataset.shape.nav)
    if udf is None:
        if flat_roi is not None:
            selected = int(np.count_nonzero(flat_roi))
            tables.append(InfoTable("ROI", (("Frames selected", f"{selected} of {dataset.shape.nav_size}"),)))
        return DisplayInfo(type(dataset).__name__, tables)
    if not isinstance(udf, UDF):
        msg = f"{udf!r} is not a UDF instance (subclass gpuudf.UDF and pass an instance)"
        raise TypeError(msg)
    tables.extend(_udf_tables(udf, dataset, flat_roi))
    return DisplayInfo(f"{type(dataset).__name__}: {type(udf).__name__}", tables)


def _udf_tables(udf: UDF, dataset: DataSet, roi: np.ndarray[Any, np.dtype[np.bool_]] | None) -> list[InfoTable]:
    name = type(udf).__name__
    host = udf.copy()
    input_dtype = give_host_meta(host, dataset, roi)
    declarations = validate_declarations(name, host.get_result_buffers())
    shape = dataset.shape
    with_data = dataset.positions_with_data  # sync_offset leaves the others unprocessed
    selected = len(with_data) if roi is None else int(np.count_nonzero(roi[with_data.start : with_data.stop]))
    general = [
        ("Processing method", process_method_of(host)),
        ("Compute backends", ", ".join(str(b) for b in host.get_backends())),
        ("Preferred input dtype", str(np.dtype(host.get_preferred_input_dtype()))),
        ("Input dtype on this dataset", str(input_dtype)),
        ("Frames processed (ROI)", f"{selected} of {shape.nav_size}"),
    ]
    buffers = tuple(
        (
            buffer_name,
            decl.kind,
            str(decl.extra_shape),
            str(decl.full_shape(shape.nav, shape.sig)),
            str(decl.local_shape(selected, shape.sig) if decl.kind == "nav" else decl.full_shape(shape.nav, shape.sig)),
            str(decl.dtype),
        )
        for buffer_name, decl in declarations.items()
        if decl.returned
    )
    return [
        InfoTable(f"{name}: general", tuple(general)),
        InfoTable(
            f"{name}: result buffers",
            buffers,
            header=BUFFER_COLUMNS,
            note="for this dataset and ROI; private buffers are not returned and not listed",
        ),
    ]


def _e(value: object) -> str:
    return html.escape(str(value))
