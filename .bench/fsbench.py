import os, time, ctypes, statistics, tempfile
libc = ctypes.CDLL(None, use_errno=True)
d = tempfile.mkdtemp(dir=".")
dfd = os.open(d, os.O_RDONLY|os.O_DIRECTORY)
def t(f, n=30):
    xs=[]
    for i in range(n):
        a=time.perf_counter(); f(i); xs.append(time.perf_counter()-a)
    return statistics.median(xs)*1000
def write_fsync(i):
    fd=os.open(f"{d}/f{i}", os.O_WRONLY|os.O_CREAT, 0o600); os.write(fd, b"x"*1500); os.fsync(fd); os.close(fd)
def write_only(i):
    fd=os.open(f"{d}/g{i}", os.O_WRONLY|os.O_CREAT, 0o600); os.write(fd, b"x"*1500); os.close(fd)
def dir_fsync_clean(i): os.fsync(dfd)
def dir_fsync_dirty(i):
    fd=os.open(f"{d}/h{i}", os.O_WRONLY|os.O_CREAT, 0o600); os.close(fd); os.fsync(dfd)
def syncfs_after_writes(i):
    for k in range(12): write_only(i*100+k)
    libc.syncfs(dfd)
def fsyncs_after_writes(i):
    for k in range(12): write_fsync(10000+i*100+k)
print(f"write+fsync small file {t(write_fsync):.2f} ms")
print(f"fsync clean dir {t(dir_fsync_clean):.2f} ms")
print(f"create+fsync dir {t(dir_fsync_dirty):.2f} ms")
print(f"12 writes + 1 syncfs {t(syncfs_after_writes, 15):.2f} ms")
print(f"12 writes each fsynced {t(fsyncs_after_writes, 15):.2f} ms")
