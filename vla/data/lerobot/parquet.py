"""The pyarrow conversions both directions need: vectors <-> columns, the tasks table, and
a writer that rolls over to the next chunk file when one grows past its size."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from vla.data.lerobot.layout import next_file


def vectors(values: np.ndarray) -> pa.Array:
    """(N, D) float32 -> fixed_size_list<float>[D]: what `datasets.Sequence(length=D)`
    (LeRobot's type for a 1-D feature) reads without a cast."""
    values = np.ascontiguousarray(values, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), values.shape[1])


def to_numpy(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A column as numpy: (N,) for scalars, (N, D) for list columns of equal lengths."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_list(column.type) or pa.types.is_fixed_size_list(column.type) \
            or pa.types.is_large_list(column.type):
        flat = column.flatten().to_numpy(zero_copy_only=False)
        return flat.reshape(len(column), -1) if len(column) else flat.reshape(0, 0)
    return column.to_numpy(zero_copy_only=False)


def tasks_table(tasks: list[str]) -> pa.Table:
    """meta/tasks.parquet as pandas would write LeRobot's `DataFrame({"task_index": ...},
    index=tasks)`: the task strings are the index, so `pd.read_parquet` (LeRobot's
    `load_tasks`) gives a frame whose row names are the tasks. The pandas metadata is
    written by hand because we do not depend on pandas."""
    table = pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()),
                      "__index_level_0__": pa.array(tasks, pa.string())})
    pandas_meta = {
        "index_columns": ["__index_level_0__"],
        "column_indexes": [{"name": None, "field_name": None, "pandas_type": "unicode",
                            "numpy_type": "object", "metadata": {"encoding": "UTF-8"}}],
        "columns": [
            {"name": "task_index", "field_name": "task_index", "pandas_type": "int64",
             "numpy_type": "int64", "metadata": None},
            {"name": None, "field_name": "__index_level_0__", "pandas_type": "unicode",
             "numpy_type": "object", "metadata": None},
        ],
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.3",
    }
    return table.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()})


def read_tasks(path: Path) -> dict[int, str]:
    """task_index -> task from meta/tasks.parquet, whether the task strings are a "task"
    column or the pandas index (LeRobot writes the latter)."""
    table = pq.read_table(path)
    names = table.column_names
    if "task" in names:
        key = "task"
    else:
        meta = json.loads((table.schema.metadata or {}).get(b"pandas", b"{}"))
        index = [c for c in meta.get("index_columns", []) if isinstance(c, str)]
        key = index[0] if index else next((n for n in names if n != "task_index"), None)
    if key is None or "task_index" not in names:
        raise ValueError(f"{path}: expected columns task_index and the task strings "
                         f"(a 'task' column or the pandas index); found {names}")
    return dict(zip(table.column("task_index").to_pylist(), table.column(key).to_pylist()))


class ChunkedParquet:
    """Parquet files chunk-CCC/file-FFF under `root`, each grown to about `max_mb`
    (uncompressed Arrow bytes, as LeRobot counts), the next one started after that."""

    def __init__(self, root: Path, template: str, max_mb: float, chunks_size: int) -> None:
        self.root, self.template = root, template
        self.max_bytes, self.chunks_size = max_mb * 1024 * 1024, chunks_size
        self.chunk = self.file = 0
        self.rows = 0  # rows already in the current file
        self._bytes = 0
        self._writer: pq.ParquetWriter | None = None

    def write(self, table: pa.Table) -> tuple[int, int, int]:
        """Append `table` (one episode); returns (chunk, file, first row in that file)."""
        if self._writer is not None and self._bytes + table.nbytes > self.max_bytes:
            self.close()
            self.chunk, self.file = next_file(self.chunk, self.file, self.chunks_size)
            self.rows = self._bytes = 0
        if self._writer is None:
            path = self.root / self.template.format(chunk_index=self.chunk, file_index=self.file)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(path, table.schema, compression="snappy")
        self._writer.write_table(table)
        first = self.rows
        self.rows += table.num_rows
        self._bytes += table.nbytes
        return self.chunk, self.file, first

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
