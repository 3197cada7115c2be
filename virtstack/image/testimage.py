"""A tiny bootable Linux guest for tests, built offline from Debian packages.

``build_test_image(dest_dir)`` downloads (``apt-get download``, nothing is
installed) the kernel package that ``linux-image-amd64`` points at and
``busybox-static``, extracts them with ``dpkg-deb -x`` and makes:

- ``vmlinuz``: the Debian kernel, booted directly (``<os><kernel>``);
- ``vmlinux``: the same kernel uncompressed, when it can boot through its PVH
  entry point: QEMU then skips the firmware's real-mode loader and the XZ
  decompression, which halves boot time under TCG (~4 s instead of ~9 s);
- ``initrd.img``: a gzip'd cpio (newc) initramfs holding busybox and the
  kernel modules needed to see virtio-pci block disks, mount ext4 and hear the
  ACPI power button, loaded with ``insmod`` in dependency order;
- ``root.raw`` (and ``root.qcow2`` when ``qemu-img`` is there): an ext4 root
  disk made with ``mkfs.ext4 -d`` that the initramfs mounts and switches to.

The guest speaks on its serial console (``console=ttyS0``) in lines tests
can wait for::

    VIRTSTACK-ROOT /dev/vda              root disk mounted (or "initramfs")
    VIRTSTACK-DISK-PRESENT vda 131072    disks present at boot (512-byte sectors)
    VIRTSTACK-GUEST-BOOTED               acpid runs, the disk watcher has its baseline
    VIRTSTACK-DISK-ADDED vdb 2097152     a disk appeared
    VIRTSTACK-DISK-INFO vdb serial=8f1e0c2a-3b4d-4e5f-a head=5649525453544143b5...
                                         after PRESENT/ADDED: the disk's serial
                                         (virtio-blk shows 20 characters) and its
                                         first 16 bytes in hex ("head=?" if unreadable)
    VIRTSTACK-DISK-RESIZED vdb 4194304   a disk's size changed
    VIRTSTACK-DISK-REMOVED vdb           a disk went away
    VIRTSTACK-POWEROFF                   the guest is about to power off (ACPI button)

Only apt touches the network. Outputs are reused while their recipe (the
scripts and module list below) and kernel are unchanged.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import gzip
import hashlib
import json
import lzma
import os
import re
import shutil
import struct
import subprocess
import tempfile
import zlib
from typing import Iterator

KERNEL_META_PACKAGE = "linux-image-amd64"
BUSYBOX_PACKAGE = "busybox-static"

#: Kernel features the guest needs: (config symbol, module that provides it
#: when the symbol is ``m``). Dependencies are found in the modules themselves.
REQUIRED_FEATURES: tuple[tuple[str, str], ...] = (
    ("CONFIG_VIRTIO_PCI", "virtio_pci"),      # virtio devices on the PCI bus
    ("CONFIG_VIRTIO_BLK", "virtio_blk"),      # /dev/vdX
    ("CONFIG_CRYPTO_CRC32C", "crc32c_generic"),  # ext4 metadata_csum (a soft dependency)
    ("CONFIG_EXT4_FS", "ext4"),
    ("CONFIG_ACPI_BUTTON", "button"),         # the ACPI power button input device
    ("CONFIG_INPUT_EVDEV", "evdev"),          # /dev/input/event* that acpid reads
)

#: What the kernel command line should say to boot this image.
KERNEL_CMDLINE = "console=ttyS0 root=/dev/vda quiet"

ROOT_DISK_MB = 64

BOOT_MARKER = "VIRTSTACK-GUEST-BOOTED"
POWEROFF_MARKER = "VIRTSTACK-POWEROFF"

# Stage 1, /init of the initramfs: load modules, mount the root disk named by
# root= and switch to it; without one, run stage 2 from the initramfs.
_STAGE1_INIT = r"""#!/bin/sh
export PATH=/bin
mkdir -p /proc /sys /dev /newroot
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
while read -r module; do
    insmod "/lib/modules/$module" || echo "VIRTSTACK-INSMOD-FAILED $module"
done < /lib/modules/load-order
root=
for arg in $(cat /proc/cmdline); do
    case "$arg" in root=*) root="${arg#root=}" ;; esac
done
if [ -n "$root" ]; then
    tries=0
    while [ ! -b "$root" ] && [ "$tries" -lt 100 ]; do
        sleep 0.1
        tries=$((tries + 1))
    done
    if mount -t ext4 "$root" /newroot; then
        mount --move /dev /newroot/dev
        mount --move /proc /newroot/proc
        mount --move /sys /newroot/sys
        exec switch_root /newroot /sbin/virtstack-guest
    fi
    echo "VIRTSTACK-ROOT-MOUNT-FAILED $root"
fi
exec /sbin/virtstack-guest
"""

# Stage 2, PID 1 of the running guest: start acpid, report disks, power off
# when acpid (or anyone) sends SIGUSR2 to PID 1 -- busybox init's convention.
_STAGE2_INIT = r"""#!/bin/sh
export PATH=/bin:/sbin
mkdir -p /run
grep -q " /run " /proc/mounts || mount -t tmpfs tmpfs /run
mkdir -p /run/disks
rootdev=initramfs
while read -r dev mnt rest; do
    [ "$mnt" = / ] && [ "${dev#/dev/}" != "$dev" ] && rootdev="$dev"
done < /proc/mounts
echo "VIRTSTACK-ROOT $rootdev"

power_off() {
    echo "VIRTSTACK-POWEROFF"
    [ -f /run/acpid.pid ] && kill "$(cat /run/acpid.pid)" 2>/dev/null
    sync
    mount -o remount,ro / 2>/dev/null
    poweroff -f
}
trap power_off USR2 TERM

acpid -c /etc/acpi -l /run/acpid.log -p /run/acpid.pid || echo "VIRTSTACK-ACPID-FAILED"

scan_disks() {
    # $1: event word for new disks (PRESENT at boot, ADDED later)
    for dir in /sys/block/*; do
        name="${dir##*/}"
        case "$name" in loop*|ram*|zram*|sr*|fd*) continue ;; esac
        read -r size < "$dir/size" || continue
        if [ ! -f "/run/disks/$name" ]; then
            echo "VIRTSTACK-DISK-$1 $name $size"
            serial=
            [ -r "$dir/serial" ] && read -r serial < "$dir/serial"
            head=$(od -An -N16 -tx1 "/dev/$name" 2>/dev/null | tr -d ' \n')
            echo "VIRTSTACK-DISK-INFO $name serial=$serial head=${head:-?}"
        else
            read -r old < "/run/disks/$name"
            [ "$old" != "$size" ] && echo "VIRTSTACK-DISK-RESIZED $name $size"
        fi
        echo "$size" > "/run/disks/$name"
    done
    for state in /run/disks/*; do
        [ -e "$state" ] || continue
        name="${state##*/}"
        if [ ! -e "/sys/block/$name" ]; then
            echo "VIRTSTACK-DISK-REMOVED $name"
            rm -f "$state"
        fi
    done
}

scan_disks PRESENT
echo "VIRTSTACK-GUEST-BOOTED"
while true; do
    sleep 0.2
    scan_disks ADDED
done
"""

# busybox acpid runs /etc/acpi/<ACTION>/<PARAMETER> for an event; the power
# button is PWRF/00000080.
_ACPI_POWER_BUTTON = "#!/bin/sh\nkill -USR2 1\n"

# Bump when the layout of the outputs changes in a way the recipe hash misses.
_FORMAT_VERSION = 2


class TestImageError(RuntimeError):
    """Building the test image failed; the message says which step and why."""


# -- kernel modules --------------------------------------------------------

def read_kernel_config(path: str) -> dict[str, str]:
    """``CONFIG_X`` -> ``"y"``/``"m"``/value from a kernel ``config-*`` file."""
    config: dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            key, sep, value = line.strip().partition("=")
            if sep and key.startswith("CONFIG_"):
                config[key] = value
    return config


def module_name(path: str) -> str:
    """Kernel module name of a ``.ko`` file (``virtio-blk.ko.xz`` -> ``virtio_blk``)."""
    base = os.path.basename(path)
    return base.split(".ko", 1)[0].replace("-", "_")


def _read_module_bytes(path: str) -> bytes:
    if path.endswith(".ko"):
        with open(path, "rb") as f:
            return f.read()
    if path.endswith(".ko.xz"):
        with lzma.open(path) as f:
            return f.read()
    if path.endswith(".ko.gz"):
        with gzip.open(path) as f:
            return f.read()
    raise TestImageError(f"cannot read kernel module {path}: unsupported compression")


def read_modinfo(data: bytes) -> dict[str, list[str]]:
    """The ``.modinfo`` section of an ELF64 kernel module as key -> values."""
    if data[:4] != b"\x7fELF" or data[4] != 2:
        raise TestImageError("not an ELF64 kernel module")
    endian = "<" if data[5] == 1 else ">"
    shoff, = struct.unpack_from(endian + "Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from(endian + "HHH", data, 0x3A)

    def section(index: int) -> tuple[int, int, int]:
        # sh_name, sh_offset, sh_size of section ``index``
        base = shoff + index * shentsize
        name, = struct.unpack_from(endian + "I", data, base)
        offset, size = struct.unpack_from(endian + "QQ", data, base + 0x18)
        return name, offset, size

    _, strtab_off, _ = section(shstrndx)
    for index in range(shnum):
        name_off, offset, size = section(index)
        end = data.index(b"\0", strtab_off + name_off)
        if data[strtab_off + name_off:end] == b".modinfo":
            info: dict[str, list[str]] = {}
            for entry in data[offset:offset + size].split(b"\0"):
                key, sep, value = entry.decode("utf-8", "replace").partition("=")
                if sep:
                    info.setdefault(key, []).append(value)
            return info
    return {}


def module_dependencies(path: str) -> list[str]:
    """Names of the modules ``path`` needs loaded first (its ``depends=``)."""
    info = read_modinfo(_read_module_bytes(path))
    return [dep for value in info.get("depends", []) for dep in value.split(",") if dep]


def resolve_modules(modules_dir: str, config: dict[str, str],
                    features: tuple[tuple[str, str], ...] = REQUIRED_FEATURES) -> list[str]:
    """Module files (relative to ``modules_dir``) to insmod, dependencies first.

    A feature whose symbol is ``y`` is built in and needs nothing; ``m`` needs
    its module and, recursively, the modules that one depends on (built-in
    dependencies are skipped). Raises ``TestImageError`` if the kernel lacks a
    feature or a module file is missing.
    """
    files: dict[str, str] = {}
    for path in glob.glob(os.path.join(modules_dir, "kernel", "**", "*.ko*"), recursive=True):
        files[module_name(path)] = os.path.relpath(path, modules_dir)
    builtin: set[str] = set()
    builtin_list = os.path.join(modules_dir, "modules.builtin")
    if os.path.exists(builtin_list):
        with open(builtin_list, encoding="utf-8") as f:
            builtin = {module_name(line.strip()) for line in f if line.strip()}

    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str, why: str) -> None:
        if name in builtin or files.get(name) in order:
            return
        if name not in files:
            raise TestImageError(f"kernel module {name} ({why}) not found in {modules_dir}")
        if name in visiting:
            raise TestImageError(f"kernel module dependency cycle at {name}")
        visiting.add(name)
        for dep in module_dependencies(os.path.join(modules_dir, files[name])):
            visit(dep, f"needed by {name}")
        visiting.discard(name)
        order.append(files[name])

    for symbol, name in features:
        state = config.get(symbol)
        if state == "y":
            continue
        if state != "m":
            raise TestImageError(f"kernel lacks {symbol} (needed for {name})")
        visit(name, symbol)
    return order


def extract_vmlinux(bzimage: bytes) -> bytes | None:
    """The uncompressed ELF kernel inside an x86 ``bzImage``, or None.

    Tries each XZ or gzip stream header in the image (as the kernel's
    scripts/extract-vmlinux does) until one decompresses to an ELF file.
    """
    for magic, decompressor in ((b"\xfd7zXZ\x00", lzma.LZMADecompressor),
                                (b"\x1f\x8b\x08", lambda: zlib.decompressobj(31))):
        start = bzimage.find(magic)
        while start != -1:
            try:
                data = decompressor().decompress(bzimage[start:])
            except (lzma.LZMAError, zlib.error):
                data = b""
            if data[:4] == b"\x7fELF":
                return data
            start = bzimage.find(magic, start + 1)
    return None


# -- packages --------------------------------------------------------------

def _run(cmd: list[str], step: str, stdin: bytes | None = None,
         cwd: str | None = None) -> bytes:
    """Run ``cmd``; return its stdout. Failures name ``step`` and show stderr."""
    try:
        return subprocess.run(cmd, input=stdin, capture_output=True, cwd=cwd,
                              check=True).stdout
    except FileNotFoundError as exc:
        raise TestImageError(f"{step}: {cmd[0]} is not installed") from exc
    except subprocess.CalledProcessError as exc:
        output = (exc.stderr or exc.stdout or b"").decode(errors="replace").strip()
        raise TestImageError(f"{step}: {' '.join(cmd)} failed: {output[-2000:]}") from exc


def _download(cache_dir: str, package: str, version: str | None = None) -> str:
    """Path of ``package``'s .deb in ``cache_dir``, downloading it if absent."""
    pattern = f"{package}_{_deb_version(version) if version else '*'}_*.deb"
    found = sorted(glob.glob(os.path.join(cache_dir, pattern)))
    if found:
        return found[-1]
    spec = f"{package}={version}" if version else package
    # Root's apt drops to the _apt user, who cannot write into root's dirs;
    # APT::Sandbox::User=root skips that (and its warning).
    _run(["apt-get", "-q", "-o", "APT::Sandbox::User=root", "download", spec],
         f"downloading {spec} (is 'apt-get update' done?)", cwd=cache_dir)
    found = sorted(glob.glob(os.path.join(cache_dir, pattern)))
    if not found:
        raise TestImageError(f"apt-get download {spec} left no {pattern} in {cache_dir}")
    return found[-1]


def _deb_version(version: str) -> str:
    # .deb file names spell an epoch "1:" as "1%3a".
    return version.replace(":", "%3a")


def resolve_kernel_package(meta_deb: str) -> tuple[str, str]:
    """(package, version) of the real kernel the meta-package depends on."""
    depends = _run(["dpkg-deb", "-f", meta_deb, "Depends"], "reading kernel dependency").decode()
    for alternative in re.split(r"[,|]", depends):
        match = re.match(r"\s*(linux-image-\S+)\s*(?:\(\s*=\s*([^)\s]+)\s*\))?", alternative)
        if match:
            return match.group(1), match.group(2)
    raise TestImageError(f"{meta_deb} depends on no linux-image package: {depends!r}")


# -- building --------------------------------------------------------------

def _recipe_digest() -> str:
    recipe = json.dumps([_FORMAT_VERSION, _STAGE1_INIT, _STAGE2_INIT, _ACPI_POWER_BUTTON,
                         REQUIRED_FEATURES, KERNEL_CMDLINE, ROOT_DISK_MB])
    return hashlib.sha256(recipe.encode()).hexdigest()[:16]


def _write_exec(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, 0o755)


def _install_busybox(root: str, busybox: str, applets: list[str]) -> None:
    """busybox in ``root``/bin with a symlink per applet; /sbin is /bin."""
    os.makedirs(os.path.join(root, "bin"), exist_ok=True)
    shutil.copy2(busybox, os.path.join(root, "bin", "busybox"))
    for applet in applets:
        link = os.path.join(root, "bin", applet)
        if applet != "busybox" and not os.path.lexists(link):
            os.symlink("busybox", link)
    os.symlink("bin", os.path.join(root, "sbin"))


def _busybox_applets(busybox: str) -> list[str]:
    # The static amd64 busybox runs on this (amd64) host as well.
    return _run([busybox, "--list"], "listing busybox applets").decode().split()


def _make_initramfs(out: str, busybox: str, applets: list[str], modules_dir: str,
                    modules: list[str]) -> None:
    with tempfile.TemporaryDirectory(dir=os.path.dirname(out)) as staging:
        _install_busybox(staging, busybox, applets)
        _write_exec(os.path.join(staging, "init"), _STAGE1_INIT)
        _write_exec(os.path.join(staging, "bin", "virtstack-guest"), _STAGE2_INIT)
        _write_exec(os.path.join(staging, "etc", "acpi", "PWRF", "00000080"), _ACPI_POWER_BUTTON)
        target = os.path.join(staging, "lib", "modules")
        os.makedirs(target)
        names = []
        for rel in modules:
            # insmod cannot decompress: store plain .ko files.
            name = module_name(rel) + ".ko"
            with open(os.path.join(target, name), "wb") as f:
                f.write(_read_module_bytes(os.path.join(modules_dir, rel)))
            names.append(name)
        with open(os.path.join(target, "load-order"), "w", encoding="utf-8") as f:
            f.write("".join(n + "\n" for n in names))

        entries = []
        for dirpath, dirnames, filenames in os.walk(staging):
            for name in dirnames + filenames:
                entries.append(os.path.relpath(os.path.join(dirpath, name), staging))
        listing = "".join(e + "\0" for e in sorted(entries)).encode()
        archive = _run(["cpio", "--null", "--quiet", "-o", "-H", "newc", "-R", "0:0"],
                       "making the initramfs cpio", stdin=listing, cwd=staging)
    with gzip.open(out, "wb", compresslevel=6) as f:
        f.write(archive)


def _make_root_disk(out: str, busybox: str, applets: list[str]) -> None:
    with tempfile.TemporaryDirectory(dir=os.path.dirname(out)) as staging:
        _install_busybox(staging, busybox, applets)
        for mountpoint in ("dev", "proc", "sys", "run", "tmp", "mnt"):
            os.makedirs(os.path.join(staging, mountpoint))
        _write_exec(os.path.join(staging, "bin", "virtstack-guest"), _STAGE2_INIT)
        _write_exec(os.path.join(staging, "etc", "acpi", "PWRF", "00000080"), _ACPI_POWER_BUTTON)
        with open(out, "wb") as f:
            f.truncate(ROOT_DISK_MB * 1024 * 1024)
        _run(["mkfs.ext4", "-q", "-F", "-L", "virtstack-root", "-E", "root_owner=0:0",
              "-d", staging, out], "making the ext4 root disk")


@contextlib.contextmanager
def _locked(dest_dir: str) -> Iterator[None]:
    # Two test runs may build into the same cache at once.
    with open(os.path.join(dest_dir, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _existing(dest_dir: str, digest: str) -> dict | None:
    try:
        with open(os.path.join(dest_dir, "manifest.json"), encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        return None
    if manifest.get("recipe") != digest:
        return None
    paths = [manifest.get(key) for key in ("kernel", "initrd", "root_disk")]
    paths += [manifest[key] for key in ("kernel_pvh", "root_disk_qcow2") if manifest.get(key)]
    if not all(p and os.path.exists(p) for p in paths):
        return None
    return manifest


def build_test_image(dest_dir: str, force: bool = False) -> dict:
    """Build (or reuse) the test guest in ``dest_dir``; return what was made.

    Returns ``{"kernel": path (bzImage), "kernel_pvh": path (uncompressed,
    PVH-bootable, faster under TCG) or None, "initrd": path, "root_disk":
    path (raw), "root_disk_qcow2": path or None, "kernel_version": "6.1.0-56-amd64",
    "cmdline": KERNEL_CMDLINE, "modules": [module file names in load order],
    "recipe": digest}``. Downloaded packages stay in ``dest_dir/debs`` and
    are used again: with ``force`` everything but the downloads is rebuilt;
    to move to a newer Debian kernel, delete ``dest_dir/debs`` too. Raises
    ``TestImageError`` naming the step that failed.
    """
    dest_dir = os.path.abspath(dest_dir)
    os.makedirs(dest_dir, exist_ok=True)
    digest = _recipe_digest()
    with _locked(dest_dir):
        if not force:
            manifest = _existing(dest_dir, digest)
            if manifest is not None:
                return manifest
        cache_dir = os.path.join(dest_dir, "debs")
        os.makedirs(cache_dir, exist_ok=True)
        meta_deb = _download(cache_dir, KERNEL_META_PACKAGE)
        kernel_pkg, kernel_pkg_version = resolve_kernel_package(meta_deb)
        kernel_deb = _download(cache_dir, kernel_pkg, kernel_pkg_version)
        busybox_deb = _download(cache_dir, BUSYBOX_PACKAGE)

        with tempfile.TemporaryDirectory(dir=dest_dir, prefix=".build-") as work:
            tree = os.path.join(work, "tree")
            for deb in (kernel_deb, busybox_deb):
                _run(["dpkg-deb", "-x", deb, tree], f"extracting {os.path.basename(deb)}")
            kernels = sorted(glob.glob(os.path.join(tree, "boot", "vmlinuz-*")))
            if not kernels:
                raise TestImageError(f"{os.path.basename(kernel_deb)} holds no /boot/vmlinuz-*")
            version = os.path.basename(kernels[-1])[len("vmlinuz-"):]
            modules_dir = os.path.join(tree, "lib", "modules", version)
            config = read_kernel_config(os.path.join(tree, "boot", f"config-{version}"))
            modules = resolve_modules(modules_dir, config)
            busybox = os.path.join(tree, "bin", "busybox")
            applets = _busybox_applets(busybox)

            out = {name: os.path.join(work, name)
                   for name in ("vmlinuz", "vmlinux", "initrd.img", "root.raw", "root.qcow2")}
            shutil.copy2(kernels[-1], out["vmlinuz"])
            kernel_pvh = None
            if config.get("CONFIG_PVH") == "y":
                with open(kernels[-1], "rb") as f:
                    vmlinux = extract_vmlinux(f.read())
                if vmlinux is not None:
                    with open(out["vmlinux"], "wb") as f:
                        f.write(vmlinux)
                    kernel_pvh = os.path.join(dest_dir, "vmlinux")
            _make_initramfs(out["initrd.img"], busybox, applets, modules_dir, modules)
            _make_root_disk(out["root.raw"], busybox, applets)
            qcow2 = None
            if shutil.which("qemu-img"):
                _run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2",
                      out["root.raw"], out["root.qcow2"]], "converting the root disk to qcow2")
                qcow2 = os.path.join(dest_dir, "root.qcow2")
            for name, path in out.items():
                if os.path.exists(path):
                    os.replace(path, os.path.join(dest_dir, name))

        manifest = {
            "kernel": os.path.join(dest_dir, "vmlinuz"),
            "kernel_pvh": kernel_pvh,
            "initrd": os.path.join(dest_dir, "initrd.img"),
            "root_disk": os.path.join(dest_dir, "root.raw"),
            "root_disk_qcow2": qcow2,
            "kernel_version": version,
            "kernel_package": f"{kernel_pkg}={kernel_pkg_version}",
            "cmdline": KERNEL_CMDLINE,
            "modules": [module_name(m) for m in modules],
            "recipe": digest,
        }
        tmp = os.path.join(dest_dir, "manifest.json.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=2)
        os.replace(tmp, os.path.join(dest_dir, "manifest.json"))
        return manifest
