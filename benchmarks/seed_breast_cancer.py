"""The seed notes' PyTorch recipe on breast_cancer, as tutorials write it (the start-up reference).

sklearn data + train_test_split + StandardScaler, an MLP, Adam, a DataLoader loop with a
per-batch ``.item()``, 10 epochs, test accuracy. Used by ``benchmarks/startup.py``.
"""

import time

t0 = time.perf_counter()
import torch  # noqa: E402
from sklearn.datasets import load_breast_cancer  # noqa: E402
from sklearn.metrics import accuracy_score  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

t_import = time.perf_counter()
x, y = load_breast_cancer(return_X_y=True)
x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=42)
scaler = StandardScaler().fit(x_train)
x_train, x_test = scaler.transform(x_train), scaler.transform(x_test)
torch.manual_seed(42)
model = nn.Sequential(nn.Linear(30, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 1))
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
t_setup = time.perf_counter()
loss_fn = nn.BCEWithLogitsLoss()
loader = DataLoader(
    TensorDataset(
        torch.tensor(x_train, dtype=torch.float32),
        torch.tensor(y_train, dtype=torch.float32).unsqueeze(1),
    ),
    batch_size=32,
    shuffle=True,
)
for _epoch in range(10):
    running = 0.0
    for xb, yb in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()
        running += loss.item()
t_train = time.perf_counter()
with torch.no_grad():
    pred = (
        (torch.sigmoid(model(torch.tensor(x_test, dtype=torch.float32))) > 0.5)
        .int()
        .numpy()
        .ravel()
    )
acc = accuracy_score(y_test, pred)
t_end = time.perf_counter()
print(
    f"seed-style: accuracy={acc:.4f} imports={t_import - t0:.2f}s setup={t_setup - t_import:.2f}s "
    f"train={t_train - t_setup:.2f}s total_in_process={t_end - t0:.2f}s"
)
