"""Time Vault.add_note on the real disk (ext4 here): median of N adds."""
import statistics, sys, tempfile, time
from pathlib import Path
from confvault.vault import Vault
n = int(sys.argv[1]) if len(sys.argv) > 1 else 40
with tempfile.TemporaryDirectory(dir="/work/wt-crash/.bench") as d:
    v, _ = Vault.init(Path(d) / "v", b"pw", work_factor=10, min_work_factor=10, state_dir=Path(d) / "s")
    v.add_client("Ann")
    for i in range(5): v.add_note("Ann", b"warm %d" % i)
    times = []
    for i in range(n):
        t = time.perf_counter(); v.add_note("Ann", b"note %d" % i); times.append(time.perf_counter() - t)
    print(f"add_note median {statistics.median(times)*1000:.1f} ms, mean {statistics.mean(times)*1000:.1f} ms over {n}")
