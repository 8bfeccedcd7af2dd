"""Two tiny networks for 8 x 8 digits that the benchmarks' ``--quick`` modes train in seconds."""

from __future__ import annotations

from torch import Tensor, nn


class TinyMLP(nn.Module):
    """64-48-24-10 MLP for 8x8 digits (--quick)."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3, self.relu = nn.Linear(64, 48), nn.Linear(48, 24), nn.Linear(24, 10), nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.fc3(self.relu(self.fc2(self.relu(self.fc1(x.flatten(1))))))


class TinyCNN(nn.Module):
    """conv 3x3 (8) - pool - conv 3x3 (16) - pool - fc 64-32-10 for 8x8 digits (--quick)."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 8, 3, padding=1), nn.Conv2d(8, 16, 3, padding=1)
        self.pool, self.relu = nn.MaxPool2d(2), nn.ReLU()
        self.fc1, self.fc2 = nn.Linear(64, 32), nn.Linear(32, 10)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool(self.relu(self.conv2(self.pool(self.relu(self.conv1(x))))))
        return self.fc2(self.relu(self.fc1(x.flatten(1))))


#: The quick networks by name.
QUICK_MODELS = {"mlp": TinyMLP, "cnn": TinyCNN}
