"""fusion: modality encoders -> modality fusion -> GNN propagation -> task heads; trainer."""

import warnings

# PyTorch Geometric calls `torch.jit.script` on two of its classes when it is imported
# (torch_geometric.nn.pool); torch >= 2.9 deprecates that call. The warning is about PyG's
# import, not about anything a user runs, so only that message from that place is hidden.
warnings.filterwarnings(
    "ignore", message=r"`torch\.jit\.script` is deprecated", category=DeprecationWarning,
    module=r"torch\.jit\._script",
)  # fmt: skip
