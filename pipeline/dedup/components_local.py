"""Connected components of an edge list that fits in one process, labelled like `components_spark`.

The distributed rounds cost a few seconds of fixed Spark work each whatever the graph's size; once the
edges left are few enough to hold in memory, scipy's union-find-style search finishes them in one pass.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

COMPONENTS = pa.schema([pa.field("id", pa.string(), False), pa.field("component", pa.string(), False)])


def smallest_id_components(src: pa.Array, dst: pa.Array) -> pa.Table:
    """(id, component) for every node on an edge, `component` the smallest id (byte order, as Spark
    compares strings) of the node's component."""
    nodes = pc.unique(pa.concat_arrays([src, dst]).cast(pa.string()))
    nodes = nodes.take(pc.array_sort_indices(nodes))  # node number = rank of its id
    n = len(nodes)
    if n == 0:
        return COMPONENTS.empty_table()
    u = pc.index_in(src, value_set=nodes).to_numpy()
    v = pc.index_in(dst, value_set=nodes).to_numpy()
    graph = coo_matrix((np.ones(len(u), dtype=np.int8), (u, v)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    smallest = np.full(labels.max() + 1, n)
    np.minimum.at(smallest, labels, np.arange(n))
    return pa.table([nodes, nodes.take(smallest[labels])], schema=COMPONENTS)
