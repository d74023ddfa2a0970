"""Writes the seed inputs of the fuzz targets into fuzz/seeds/<target>/, using only the
Python standard library: small anomaly maps in every format sieve reads, a legacy PyTorch
checkpoint with two tensors, and the repository's prior files."""

import pickle
import shutil
import struct
import sys
import types
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEEDS = HERE / "seeds"


def npy(descr, shape, values, fortran=False):
    header = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (
        descr,
        "True" if fortran else "False",
        "(" + "".join(f"{n}, " for n in shape).rstrip(" ") + ")" if len(shape) != 1 else f"({shape[0]},)",
    )
    while (10 + len(header) + 1) % 64:
        header += " "
    header += "\n"
    code = {"<f4": "<%df", "<f8": "<%dd", "<i8": "<%dq"}[descr] % len(values)
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + struct.pack(code, *values)


def png(width, height, depth, rows):
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b""
    for row in rows:
        raw += b"\x00" + b"".join(v.to_bytes(depth // 8, "big") for v in row)
    ihdr = struct.pack(">IIBBBBB", width, height, depth, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def tiff_float32(width, height, values):
    data = struct.pack("<%df" % len(values), *values)
    entries = [
        (256, 3, 1, width),  # ImageWidth
        (257, 3, 1, height),  # ImageLength
        (258, 3, 1, 32),  # BitsPerSample
        (259, 3, 1, 1),  # Compression: none
        (262, 3, 1, 1),  # PhotometricInterpretation: black is zero
        (273, 4, 1, 8),  # StripOffsets: data right after the header
        (277, 3, 1, 1),  # SamplesPerPixel
        (278, 3, 1, height),  # RowsPerStrip
        (279, 4, 1, len(data)),  # StripByteCounts
        (339, 3, 1, 3),  # SampleFormat: IEEE float
    ]
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        packed = struct.pack("<H", value) + b"\x00\x00" if kind == 3 else struct.pack("<I", value)
        ifd += struct.pack("<HHI", tag, kind, count) + packed
    ifd += struct.pack("<I", 0)
    return b"II*\x00" + struct.pack("<I", 8 + len(data)) + data + ifd


def legacy_checkpoint():
    """Returns a state dict {"weight": float 2x3, "count": long scalar} in the pre-1.6
    torch.save layout, written with stand-ins for the torch globals so that torch is not
    needed."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")
    sys.modules["torch"], sys.modules["torch._utils"] = torch, utils

    class FloatStorage:
        pass

    class LongStorage:
        pass

    def _rebuild_tensor_v2(*args):
        raise NotImplementedError

    for owner, value in [(torch, FloatStorage), (torch, LongStorage), (utils, _rebuild_tensor_v2)]:
        value.__module__ = owner.__name__
        value.__qualname__ = value.__name__
        setattr(owner, value.__name__, value)

    class Storage:
        def __init__(self, cls, key, numel):
            self.cls, self.key, self.numel = cls, key, numel

    class Tensor:
        def __init__(self, storage, offset, size, stride):
            self.args = (storage, offset, size, stride, False, {})

        def __reduce__(self):
            return (_rebuild_tensor_v2, self.args)

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, Storage):
                return ("storage", obj.cls, obj.key, "cpu", obj.numel, None)
            return None

    import collections
    import io

    weight = Storage(FloatStorage, "0", 6)
    count = Storage(LongStorage, "1", 1)
    state = collections.OrderedDict(
        [("weight", Tensor(weight, 0, (2, 3), (3, 1))), ("count", Tensor(count, 0, (), ()))]
    )
    out = io.BytesIO()
    for obj in [0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True,
                "type_sizes": {"short": 2, "int": 4, "long": 4}}]:
        pickle.dump(obj, out, protocol=2)
    Pickler(out, protocol=2).dump(state)
    pickle.dump(["0", "1"], out, protocol=2)
    out.write(struct.pack("<Q", 6) + struct.pack("<6f", 0, 1, 2, 3, 4, 5))
    out.write(struct.pack("<Q", 1) + struct.pack("<q", 42))
    return out.getvalue()


def main():
    maps = {
        "f4-2x3.npy": npy("<f4", (2, 3), [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]),
        "f8-fortran-1x3x2.npy": npy("<f8", (1, 3, 2), [0.0, 1.0, 2.0, 3.0, 4.0, 5.0], fortran=True),
        "i8-1x2.npy": npy("<i8", (1, 2), [1, 2]),
        "gray8-3x2.png": png(3, 2, 8, [[0, 128, 255], [1, 2, 3]]),
        "gray16-2x2.png": png(2, 2, 16, [[0, 65535], [256, 1]]),
        "float32-2x2.tiff": tiff_float32(2, 2, [0.0, 0.25, 0.5, 1.0]),
    }
    seeds = {
        "map_reader": maps,
        "legacy_checkpoint": {"state-dict.pth": legacy_checkpoint()},
        "prior_parser": {p.name: p.read_bytes() for p in sorted((HERE.parent / "priors").glob("*.toml"))},
    }
    for target, files in seeds.items():
        folder = SEEDS / target
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for name, data in files.items():
            (folder / name).write_bytes(data)
        print(f"{target}: {len(files)} seeds in {folder}")


if __name__ == "__main__":
    main()
