"""The reference implementation (slayerPytorch) on the W1/W2 workloads, on
the GPU: the other half of the comparison bench/gpu.lua makes.

    python3 bench/reference_gpu.py REFERENCE_SRC BUILD_DIR [--build-only] [--steps S] [--warmup W]

REFERENCE_SRC is the reference's src/ folder (slayerPytorch's package, with
src/cuda/); bench/bundle.sh copies it into .bundle/reference/src when
SLAYER_REFERENCE names a checkout.  Nothing of it is kept in this
repository: it is read, built and run on the GPU machine only.

The reference's CUDA extension (src/cuda/slayerKernels.cu) is compiled with
torch.utils.cpp_extension into BUILD_DIR with the reference's own flags
(-O2 -use_fast_math), for sm_90 instead of its sm_60 (nvcc 13 has no sm_60).
Its C++ calls APIs that PyTorch 2 removed; the copy it compiles has the
mechanical replacements below and nothing else changed.  The Loihi
extension is not built (W1/W2 do not use it): a stand-in module lets the
package import.

The workloads are those of bench/workloads.lua, written with the
reference's API: W1 spike(psp(fc(x))) for 2312 -> 512 -> 10, W2 psp before
every conv/pool/dense, SRM neurons (theta 10, tauSr 10, tauRef 1, scaleRef
2, tauRho 1, scaleRho 1), T = 300, numSpikes loss (60/10 in [0, 300)),
torch.optim.Adam(lr 0.01, amsgrad), inputs Bernoulli 1.5% spikes.  One
step = forward + loss + zero_grad + backward + Adam step; the reference's
loss copies the output to the host and back, which is part of its step.
PyTorch's defaults stand (cuDNN may use TF32 in the dense/conv layers, as
the reference runs by default).  Prints one line per workload and batch:
median (min-max) ms per step, the forward alone (no_grad), and the peak GPU
memory PyTorch allocated and reserved.
"""
import argparse
import os
import shutil
import statistics
import sys
import time
import types

import torch
from torch.utils.cpp_extension import load

# PyTorch 2 removed these C++ APIs; the reference's extension uses them
CXX_COMPAT = [
    ('.type().is_cuda()', '.is_cuda()'),
    ('.data<float>()', '.data_ptr<float>()'),
    ('AT_ASSERTM(', 'TORCH_CHECK('),
]
# NumPy 2 made numpy.lib.arraysetops private (the import is unused)
PY_COMPAT = [('from numpy.lib.arraysetops import isin', 'from numpy import isin')]


def patched_copy(src, dst):
    """Copy the reference's package to dst/slayerSNN with the compat edits."""
    pkg = os.path.join(dst, 'slayerSNN')
    if os.path.isdir(pkg):
        shutil.rmtree(pkg)
    shutil.copytree(src, pkg)
    for base, _, files in os.walk(pkg):
        for name in files:
            edits = CXX_COMPAT if name.endswith(('.cu', '.h')) else PY_COMPAT if name.endswith('.py') else None
            if not edits:
                continue
            path = os.path.join(base, name)
            with open(path) as f:
                text = f.read()
            new = text
            for a, b in edits:
                new = new.replace(a, b)
            if new != text:
                with open(path, 'w') as f:
                    f.write(new)
    return pkg


def build(src, build_dir, reuse=False):
    """Compile (or, with reuse and an earlier build there, just load) the
    extension.  A fresh copy has new file times, so ninja compiles again:
    the benchmark run reuses the copy the --build-only run made (on the
    H200 the second compile cost 75 s of device time)."""
    os.makedirs(build_dir, exist_ok=True)
    pkg = os.path.join(build_dir, 'slayerSNN')
    if not (reuse and os.path.isdir(pkg)):
        pkg = patched_copy(src, build_dir)
    ext_dir = os.path.join(build_dir, 'ext')
    os.makedirs(ext_dir, exist_ok=True)
    t0 = time.time()
    mod = load(name='slayerCuda', sources=[os.path.join(pkg, 'cuda', 'slayerKernels.cu')],
               extra_cuda_cflags=['-gencode=arch=compute_90,code=sm_90', '-O2', '-use_fast_math'],
               build_directory=ext_dir, verbose=False)
    print('reference: slayerCuda built/loaded in %.1f s' % (time.time() - t0), flush=True)
    return mod


def import_reference(src, build_dir):
    sys.modules['slayerCuda'] = build(src, build_dir, reuse=True)
    sys.modules['slayerLoihiCuda'] = types.ModuleType('slayerLoihiCuda')  # W1/W2 never call it
    sys.path.insert(0, build_dir)
    import slayerSNN
    return slayerSNN


NET_PARAMS = {
    'neuron': {'type': 'SRMALPHA', 'theta': 10, 'tauSr': 10.0, 'tauRef': 1.0, 'scaleRef': 2,
               'tauRho': 1, 'scaleRho': 1},
    'simulation': {'Ts': 1.0, 'tSample': 300},
    'training': {'error': {'type': 'NumSpikes', 'tgtSpikeRegion': {'start': 0, 'stop': 300},
                           'tgtSpikeCount': {True: 60, False: 10}}},
}


def networks(snn):
    class MLP(torch.nn.Module):
        def __init__(self, p):
            super().__init__()
            self.slayer = snn.layer(p['neuron'], p['simulation'])
            self.fc1 = self.slayer.dense((34, 34, 2), 512)
            self.fc2 = self.slayer.dense(512, 10)

        def forward(self, x):
            sl = self.slayer
            s = sl.spike(sl.psp(self.fc1(x)))
            return sl.spike(sl.psp(self.fc2(s)))

    class CNN(torch.nn.Module):
        def __init__(self, p):
            super().__init__()
            sl = self.slayer = snn.layer(p['neuron'], p['simulation'])
            self.conv1 = sl.conv(2, 16, 5, padding=1)
            self.pool1 = sl.pool(2)
            self.conv2 = sl.conv(16, 32, 3, padding=1)
            self.pool2 = sl.pool(2)
            self.conv3 = sl.conv(32, 64, 3, padding=1)
            self.fc1 = sl.dense((8, 8, 64), 10)

        def forward(self, x):
            sl = self.slayer
            s = sl.spike(self.conv1(sl.psp(x)))
            s = sl.spike(self.pool1(sl.psp(s)))
            s = sl.spike(self.conv2(sl.psp(s)))
            s = sl.spike(self.pool2(sl.psp(s)))
            s = sl.spike(self.conv3(sl.psp(s)))
            return sl.spike(self.fc1(sl.psp(s)))

    return {'W1 nmnist-mlp': MLP, 'W2 nmnist-cnn': CNN}


def run(snn, name, Net, batch, steps, warmup):
    dev = torch.device('cuda')
    params = snn.params(dict=NET_PARAMS)
    torch.manual_seed(0)
    net = Net(params).to(dev)
    error = snn.loss(params).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=0.01, amsgrad=True)
    x = (torch.rand((batch, 2, 34, 34, 300), device=dev) < 0.015).float()
    target = torch.zeros((batch, 10, 1, 1, 1), device=dev)
    target[torch.arange(batch), torch.arange(batch) % 10] = 1

    def step():
        out = net(x)
        loss = error.numSpikes(out, target)
        opt.zero_grad()
        loss.backward()
        opt.step()

    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    fwd = []
    with torch.no_grad():
        for _ in range(steps):
            t0 = time.perf_counter()
            net(x)
            torch.cuda.synchronize()
            fwd.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated() / 2 ** 20
    reserved = torch.cuda.max_memory_reserved() / 2 ** 20
    ms = [t * 1e3 for t in times]
    print('reference %-14s batch %-4d %8.2f ms/step (%.2f-%.2f)  forward %.2f ms  peak GPU memory %.0f MB '
          'allocated, %.0f MB reserved' % (name, batch, statistics.median(ms), min(ms), max(ms),
                                           statistics.median(fwd) * 1e3, peak, reserved), flush=True)
    del net, error, opt, x, target
    torch.cuda.empty_cache()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('src')
    ap.add_argument('build_dir')
    ap.add_argument('--build-only', action='store_true')
    ap.add_argument('--steps', type=int, default=20)
    ap.add_argument('--warmup', type=int, default=5)
    a = ap.parse_args()
    if a.build_only:
        build(a.src, a.build_dir)
        return
    snn = import_reference(a.src, a.build_dir)
    print('reference on %s, PyTorch %s' % (torch.cuda.get_device_name(), torch.__version__), flush=True)
    nets = networks(snn)
    for name, batch in [('W1 nmnist-mlp', 12), ('W1 nmnist-mlp', 128), ('W2 nmnist-cnn', 12), ('W2 nmnist-cnn', 64)]:
        run(snn, name, nets[name], batch, a.steps, a.warmup)


if __name__ == '__main__':
    main()
