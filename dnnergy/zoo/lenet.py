"""LeNet-300-100 and Caffe's LeNet-5 for 28x28 MNIST digits (LeCun et al. 1998; Han et al. 2015).

Shapes follow the table of Zhang, Davoodi and Hu (seed 002), which lists the networks
used by Han et al.'s pruning experiments: LeNet-300-100 is 784-300-100-10 with ReLU;
LeNet-5 is Caffe's ``examples/mnist/lenet_train_test.prototxt`` (20 and 50 5x5 filters,
2x2 max pooling, a 500-unit hidden layer with ReLU, no activation after the convs).
"""

from __future__ import annotations

import itertools

from torch import Tensor, nn

from ._registry import register_model

__all__ = ["LeNet300", "LeNet5", "lenet300", "lenet5", "StudentMLP", "lenet100", "lenet64"]


class LeNet300(nn.Module):
    """784-300-100-10 multilayer perceptron; a ``[N, 1, 28, 28]`` image is flattened inside."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.fc1 = nn.Linear(784, 300)
        self.fc2 = nn.Linear(300, 100)
        self.fc3 = nn.Linear(100, num_classes)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        x = x.flatten(1)
        return self.fc3(self.relu(self.fc2(self.relu(self.fc1(x)))))


class StudentMLP(nn.Module):
    """784-hidden...-classes ReLU MLP smaller than LeNet-300-100 (a distillation student); layers ``fc1``, ``fc2``, ..."""

    def __init__(self, hidden: tuple[int, ...], num_classes: int = 10):
        super().__init__()
        sizes = (784, *hidden, num_classes)
        for i, (c, m) in enumerate(itertools.pairwise(sizes), 1):
            self.add_module(f"fc{i}", nn.Linear(c, m))
        self.depth = len(sizes) - 1
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        x = x.flatten(1)
        for i in range(1, self.depth):
            x = self.relu(getattr(self, f"fc{i}")(x))
        return getattr(self, f"fc{self.depth}")(x)


class LeNet5(nn.Module):
    """Caffe LeNet-5: conv 5x5x1x20, pool 2, conv 5x5x20x50, pool 2, fc 800-500, ReLU, fc 500-10."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 20, 5)
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(20, 50, 5)
        self.pool2 = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(4 * 4 * 50, 500)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(500, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool2(self.conv2(self.pool1(self.conv1(x))))
        return self.fc2(self.relu(self.fc1(x.flatten(1))))


@register_model(
    input_shape=(1, 1, 28, 28),
    description="LeNet-300-100: 784-300-100-10 MLP on 28x28 MNIST digits",
    published={
        "macs": 266_200, "weights": 266_200, "params": 266_610,
        "source": "Han et al. NeurIPS 2015 Table 1 (267K weights); seed 002 table (#Edges 266K, #Parm 266K); "
        "784*300 + 300*100 + 100*10 = 266,200 weights + 410 biases",
    },
)
def lenet300(num_classes: int = 10) -> nn.Module:
    """LeNet-300-100 (266,200 weights, 410 biases, 266,200 MACs per image)."""
    return LeNet300(num_classes)


@register_model(
    input_shape=(1, 1, 28, 28),
    description="Caffe LeNet-5: two 5x5 convs (20, 50), 2x2 max pools, fc 800-500-10",
    published={
        "macs": 2_293_000, "weights": 430_500, "params": 431_080,
        "source": "seed 002 table (#Edges 2293K, #Parm 431K); Han et al. NeurIPS 2015 Table 1 (431K)",
    },
)
def lenet5(num_classes: int = 10) -> nn.Module:
    """Caffe LeNet-5 (430,500 weights, 580 biases, 2,293,000 MACs per image)."""
    return LeNet5(num_classes)


@register_model(
    input_shape=(1, 1, 28, 28),
    description="784-100-10 MLP: a distillation student smaller than LeNet-300-100",
    published={"macs": 79_400, "weights": 79_400, "params": 79_510,
               "source": "closed form: 784*100 + 100*10 = 79,400 weights + 110 biases"},
)
def lenet100(num_classes: int = 10) -> nn.Module:
    """784-100-10 MLP (79,400 weights, 110 biases, 79,400 MACs per image)."""
    return StudentMLP((100,), num_classes)


@register_model(
    input_shape=(1, 1, 28, 28),
    description="784-64-32-10 MLP: a distillation student smaller than LeNet-300-100",
    published={"macs": 52_544, "weights": 52_544, "params": 52_650,
               "source": "closed form: 784*64 + 64*32 + 32*10 = 52,544 weights + 106 biases"},
)
def lenet64(num_classes: int = 10) -> nn.Module:
    """784-64-32-10 MLP (52,544 weights, 106 biases, 52,544 MACs per image)."""
    return StudentMLP((64, 32), num_classes)
