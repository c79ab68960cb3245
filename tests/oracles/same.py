"""Compare reference values as numbers, not text: numpy's SIMD paths may differ in the last
bits between CPUs, so a fixture script's --check allows a small tolerance."""
import math


def same(a, b, rel=1e-9, abs_=1e-5):
    if isinstance(a, float) or isinstance(b, float):
        return (isinstance(a, (int, float)) and isinstance(b, (int, float))
                and math.isclose(a, b, rel_tol=rel, abs_tol=abs_))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k], rel, abs_) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y, rel, abs_) for x, y in zip(a, b))
    return a == b
