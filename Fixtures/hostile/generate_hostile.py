#!/usr/bin/env python3
"""Generate Torchport's hostile-input corpus.

Run from the repository root:

    python3 Fixtures/hostile/generate_hostile.py

Writes ``Fixtures/hostile/cases/<name>.pth`` and ``Fixtures/hostile/manifest.json``. Standard library
only (no torch, no numpy): every pickle is hand-assembled from (opcode, operand) pairs and every zip
archive is written byte by byte, so that each case can lie in exactly one place. The output is
deterministic (fixed DOS timestamps 1980-01-01 00:00:00, no randomness except a fixed hash chain).

The classes follow /work/shared/HOSTILE-INPUTS.md (class 0 holds well-formed baselines). Each
manifest entry:

    file                 path relative to Fixtures/hostile/
    class                class number (0 = valid baseline)
    description          what the case does
    code                 expected ``CheckpointError.code``; null = "must not crash or hang: any outcome,
                         but a thrown error must be a CheckpointError"
    entry                when non-null, must equal the error's ``entry``
    key                  when non-null, must equal the error's ``key``
    opcode               when non-null, must equal the error's ``opcode``
    has_offset           the error must carry a byte ``offset``
    located              the error must carry an ``offset`` or a ``key`` (tensor-level errors, which a
                         reader may report at the pickle offset or under the tensor's name)
    expect_success       (code null only) the file must load without error
    expect_tensors       (code null only) on success, the tensor names, in order
    expect_tensor_count  (code null only) on success, the number of tensors
    scan                 when non-null, the verdict ``torchport scan`` must give (``safe``,
                         ``dangerous``, ``ambiguous``, ``unreadable``): what torch.load would do
                         with the bytes, not what Torchport's reader does

Every file is smaller than 64 KiB; bombs are declared huge, never actually huge.
"""

import hashlib
import io
import json
import os
import pickle
import pickletools
import shutil
import struct
import sys
import zipfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
CASES_DIR = os.path.join(HERE, "cases")
MAX_FILE = 64 * 1024

# --------------------------------------------------------------------------------------------------
# Pickle assembler
# --------------------------------------------------------------------------------------------------

OPCODES = {op.name: op for op in pickletools.opcodes}
NOARG = object()


def _b(s):
    return s.encode("utf-8") if isinstance(s, str) else bytes(s)


def encode_long(n):
    """Two's-complement little-endian, as pickle.encode_long."""
    if n == 0:
        return b""
    nbytes = (n.bit_length() >> 3) + 1
    result = n.to_bytes(nbytes, "little", signed=True)
    if n < 0 and nbytes > 1 and result[-1] == 0xFF and (result[-2] & 0x80) != 0:
        result = result[:-1]
    return result


def _operand(name, arg):
    """Encode one operand. Strings may be given as bytes to inject invalid UTF-8."""
    if name in ("PROTO", "BININT1", "BINGET", "BINPUT", "EXT1"):
        return struct.pack("<B", arg)
    if name in ("BININT2", "EXT2"):
        return struct.pack("<H", arg)
    if name in ("BININT", "EXT4"):
        return struct.pack("<i", arg)
    if name in ("LONG_BINGET", "LONG_BINPUT"):
        return struct.pack("<I", arg)
    if name == "FRAME":
        return struct.pack("<Q", arg)
    if name == "BINFLOAT":
        return struct.pack(">d", arg)
    if name in ("GLOBAL", "INST"):
        mod, nm = arg
        return _b(mod) + b"\n" + _b(nm) + b"\n"
    if name in ("PUT", "GET", "PERSID"):
        return _b(str(arg)) + b"\n"
    if name in ("BINUNICODE", "BINBYTES"):
        d = _b(arg)
        return struct.pack("<I", len(d)) + d
    if name in ("SHORT_BINUNICODE", "SHORT_BINBYTES", "SHORT_BINSTRING"):
        d = _b(arg)
        return struct.pack("<B", len(d)) + d
    if name in ("BINUNICODE8", "BINBYTES8", "BYTEARRAY8"):
        d = _b(arg)
        return struct.pack("<Q", len(d)) + d
    if name == "BINSTRING":
        d = _b(arg)
        return struct.pack("<i", len(d)) + d
    if name == "LONG1":
        d = encode_long(arg)
        return struct.pack("<B", len(d)) + d
    if name == "LONG4":
        d = encode_long(arg)
        return struct.pack("<i", len(d)) + d
    raise ValueError("no encoder for operand of %s" % name)


def asm(ops):
    """Assemble a (possibly nested) list of ops into bytes.

    An op is an opcode name ("MARK"), a pair (name, operand) (("BININT", 5)), ("RAW", bytes) for
    hand-made bytes, or a list of ops.
    """
    out = bytearray()

    def emit(op):
        if isinstance(op, list):
            for o in op:
                emit(o)
        elif isinstance(op, str):
            code = OPCODES[op]
            if code.arg is not None:
                raise ValueError("%s needs an operand" % op)
            out.extend(code.code.encode("latin-1"))
        elif isinstance(op, (bytes, bytearray)):
            out.extend(op)
        else:
            name, arg = op
            if name == "RAW":
                out.extend(arg)
            else:
                out.extend(OPCODES[name].code.encode("latin-1"))
                out.extend(_operand(name, arg))

    emit(ops)
    return bytes(out)


# ---- small builders (each returns a list of ops that pushes one value) ---------------------------

def I(n):
    """An int, encoded the way pickle protocol 2 does."""
    if 0 <= n < 256:
        return [("BININT1", n)]
    if 0 <= n < 65536:
        return [("BININT2", n)]
    if -(2 ** 31) <= n < 2 ** 31:
        return [("BININT", n)]
    return [("LONG1", n)]


def S(s):
    return [("BINUNICODE", s)]


def G(mod, name):
    return [("GLOBAL", (mod, name))]


def tup(*items):
    """A tuple of already-built items (each a list of ops)."""
    n = len(items)
    if n == 0:
        return ["EMPTY_TUPLE"]
    if n <= 3:
        return list(items) + [["TUPLE1", "TUPLE2", "TUPLE3"][n - 1]]
    return ["MARK"] + list(items) + ["TUPLE"]


def ints(values):
    return tup(*[I(v) for v in values])


def odict():
    return [G("collections", "OrderedDict"), "EMPTY_TUPLE", "REDUCE"]


def state_dict(items, base=None):
    """OrderedDict of (name, ops) pairs via MARK ... SETITEMS."""
    ops = list(base or odict())
    if items:
        ops.append("MARK")
        for k, v in items:
            ops += [S(k), v]
        ops.append("SETITEMS")
    return ops


def plain_dict(items):
    ops = ["EMPTY_DICT"]
    if items:
        ops.append("MARK")
        for k, v in items:
            ops += [S(k), v]
        ops.append("SETITEMS")
    return ops


def pid(key="0", storage="FloatStorage", numel=4, location="cpu", storage_mod="torch", tag="storage",
        view=NOARG):
    """A persistent id ('storage', <GLOBAL torch.FloatStorage>, key, location, numel) + BINPERSID.
    With ``view`` (legacy format) the tuple has a sixth element."""
    items = [S(tag), G(storage_mod, storage), S(key), S(location), I(numel)]
    if view is not NOARG:
        items.append(view)
    return ["MARK"] + items + ["TUPLE", "BINPERSID"]


def tensor(p=None, offset=0, size=(4,), stride=(1,), requires_grad=False, hooks=None,
           fn=("torch._utils", "_rebuild_tensor_v2")):
    """_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks) via REDUCE."""
    p = pid() if p is None else p
    args = [p, I(offset) if isinstance(offset, int) else offset,
            ints(size) if isinstance(size, tuple) else size,
            ints(stride) if isinstance(stride, tuple) else stride,
            "NEWTRUE" if requires_grad else "NEWFALSE",
            odict() if hooks is None else hooks]
    return [G(*fn), "MARK"] + args + ["TUPLE", "REDUCE"]


def rebuild_call(args):
    """_rebuild_tensor_v2 called with an arbitrary list of argument op-lists."""
    return [G("torch._utils", "_rebuild_tensor_v2"), "MARK"] + list(args) + ["TUPLE", "REDUCE"]


def P(body, proto=2):
    """A complete pickle: PROTO, body, STOP."""
    return asm([("PROTO", proto), body, "STOP"])


def P4(body, proto=4):
    """A protocol-4 pickle with one FRAME around the body, as Python writes it."""
    inner = asm([body, "STOP"])
    return asm([("PROTO", proto), ("FRAME", len(inner))]) + inner


def floats(values):
    return struct.pack("<%df" % len(values), *values)


W4 = floats([1.0, 2.0, 3.0, 4.0])  # the default storage '0': 4 float32 values


# --------------------------------------------------------------------------------------------------
# Zip writer (byte by byte, so any field can lie)
# --------------------------------------------------------------------------------------------------

DOS_TIME = 0
DOS_DATE = (0 << 9) | (1 << 5) | 1  # 1980-01-01
U32 = 0xFFFFFFFF


class ZEntry:
    def __init__(self, name, data, method=0, payload=None, usize=None, csize=None, crc=None,
                 align=True, local_name=None, local_extra_len=None, cd_offset=None, flags=0):
        self.name = _b(name)
        self.data = data              # uncompressed content
        self.method = method
        self.payload = payload        # bytes as stored (defaults: data, or raw deflate of data)
        self.usize = usize            # declared sizes / crc (None: the true ones)
        self.csize = csize
        self.crc = crc
        self.align = align            # pad the local extra so that the data is 64-byte aligned
        self.local_name = local_name  # name written in the local header (None: same)
        self.local_extra_len = local_extra_len  # lie about the local extra length
        self.cd_offset = cd_offset    # lie about the local header offset in the central directory
        self.flags = flags


def deflate(data, level=9):
    c = zlib.compressobj(level, zlib.DEFLATED, -15, 9)
    return c.compress(data) + c.flush()


def zip64_extra(values):
    return struct.pack("<HH", 0x0001, 8 * len(values)) + b"".join(struct.pack("<Q", v) for v in values)


def build_zip(entries, zip64_end=True, start=b""):
    """Write entries; returns (bytes, layout). ``layout`` records where each structure is."""
    out = bytearray(start)
    layout = {"local": {}, "data": {}, "cd_record": {}}
    recs = []
    for e in entries:
        payload = e.payload
        if payload is None:
            payload = deflate(e.data) if e.method == 8 else e.data
        crc = zlib.crc32(e.data) & U32 if e.crc is None else e.crc
        usize = len(e.data) if e.usize is None else e.usize
        csize = len(payload) if e.csize is None else e.csize
        lname = e.name if e.local_name is None else _b(e.local_name)
        off = len(out)
        big = usize >= U32 or csize >= U32
        lextra = zip64_extra([usize, csize]) if big else b""
        if e.align:
            base = off + 30 + len(lname) + len(lextra) + 4
            pad = (-base) % 64
            lextra += b"FB" + struct.pack("<H", pad) + b"Z" * pad
        lextra_len = len(lextra) if e.local_extra_len is None else e.local_extra_len
        version = 45 if big else 20
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, version, e.flags, e.method, DOS_TIME, DOS_DATE,
                           crc, U32 if big else csize, U32 if big else usize, len(lname), lextra_len)
        out += lname + lextra
        layout["local"][e.name] = off
        layout["data"][e.name] = len(out)
        out += payload
        recs.append((e, crc, usize, csize, off if e.cd_offset is None else e.cd_offset))
    cd_start = len(out)
    for e, crc, usize, csize, off in recs:
        z64 = []
        f_us, f_cs, f_off = usize, csize, off
        if usize >= U32:
            z64.append(usize)
            f_us = U32
        if csize >= U32:
            z64.append(csize)
            f_cs = U32
        if off >= U32:
            z64.append(off)
            f_off = U32
        extra = zip64_extra(z64) if z64 else b""
        layout["cd_record"][e.name] = len(out)
        out += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 0x031E, 45 if z64 else 20, e.flags, e.method,
                           DOS_TIME, DOS_DATE, crc, f_cs, f_us, len(e.name), len(extra), 0, 0, 0,
                           0o100644 << 16, f_off)
        out += e.name + extra
    cd_size = len(out) - cd_start
    n = len(entries)
    layout["cd"] = cd_start
    layout["cd_size"] = cd_size
    if zip64_end:
        layout["z64eocd"] = len(out)
        out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 0x031E, 45, 0, 0, n, n, cd_size, cd_start)
        layout["z64loc"] = len(out)
        out += struct.pack("<IIQI", 0x07064B50, 0, layout["z64eocd"], 1)
    layout["eocd"] = len(out)
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, cd_size, cd_start, 0)
    layout["size"] = len(out)
    return bytes(out), layout


def patch(buf, offset, fmt, *values):
    b = bytearray(buf)
    struct.pack_into(fmt, b, offset, *values)
    return bytes(b)


def torch_entries(pkl, storages=None, prefix="archive", pkl_method=0, extra=None):
    storages = {"0": W4} if storages is None else storages
    ents = [ZEntry(prefix + "/data.pkl", pkl, method=pkl_method), ZEntry(prefix + "/byteorder", b"little")]
    for k in sorted(storages):
        ents.append(ZEntry(prefix + "/data/" + k, storages[k]))
    ents.append(ZEntry(prefix + "/version", b"3\n"))
    ents += extra or []
    return ents


def torch_zip(pkl, storages=None, prefix="archive", pkl_method=0, extra=None):
    return build_zip(torch_entries(pkl, storages, prefix, pkl_method, extra))[0]


# --------------------------------------------------------------------------------------------------
# Legacy (pre-1.6) stream
# --------------------------------------------------------------------------------------------------

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def legacy_stream(main_pkl, keys=("0",), storages=None, magic=None, version=1001, sys_info=None,
                  key_list=None):
    storages = {"0": (4, W4)} if storages is None else storages
    magic_pkl = magic if magic is not None else P([("LONG1", LEGACY_MAGIC)])
    ver_pkl = P(I(version))
    if sys_info is None:
        sys_info = P(plain_dict([("protocol_version", I(1001)), ("little_endian", ["NEWTRUE"]),
                                 ("type_sizes", plain_dict([("short", I(2)), ("int", I(4)),
                                                            ("long", I(4))]))]))
    klist = key_list if key_list is not None else P(["EMPTY_LIST", "MARK"] + [S(k) for k in keys] + ["APPENDS"])
    out = magic_pkl + ver_pkl + sys_info + main_pkl + klist
    for k in keys:
        count, data = storages[k]
        out += struct.pack("<q", count) + data
    return out


def legacy_tensor(key="0", numel=4, **kw):
    return tensor(p=pid(key=key, numel=numel, view=["NONE"]), **kw)


# --------------------------------------------------------------------------------------------------
# Sanity checks with Python's own unpickler (restricted: nothing is imported)
# --------------------------------------------------------------------------------------------------

class _Stub:
    def __init__(self, *a, **k):
        self.args = a

    def __setstate__(self, state):
        self.state = state


class _Tensor:
    def __init__(self, storage, offset, size, stride, *rest):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride


class _CheckUnpickler(pickle._Unpickler):  # pure Python: its memo is a dict
    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            import collections
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _Tensor
        if (module, name) == ("_codecs", "encode"):
            import codecs
            return codecs.encode
        if module in ("torch", "argparse", "numpy", "numpy.core.multiarray") or module.startswith("__torch__"):
            return type(name, (_Stub,), {})
        raise pickle.UnpicklingError("refused %s.%s" % (module, name))

    def persistent_load(self, p):
        return ("PID",) + tuple(p)


def python_load(pkl):
    """Load with a restricted unpickler; also checks that STOP ends the data exactly."""
    f = io.BytesIO(pkl)
    value = _CheckUnpickler(f).load()
    assert f.tell() == len(pkl), "trailing bytes after STOP"
    return value


def check_disassembles(pkl):
    pickletools.dis(pkl, out=io.StringIO())


# --------------------------------------------------------------------------------------------------
# The cases
# --------------------------------------------------------------------------------------------------

CASES = []
PKL = "archive/data.pkl"


def add(name, cls, description, data, code, entry=None, key=None, has_offset=False, opcode=None,
        located=False, expect_success=False, expect_tensors=None, expect_tensor_count=None, scan=None):
    assert len(data) < MAX_FILE, (name, len(data))
    assert all(c["name"] != name for c in CASES), name
    if code is not None:
        assert not (expect_success or expect_tensors or expect_tensor_count), name
    CASES.append(dict(name=name, cls=cls, description=description, data=data, code=code, entry=entry,
                      key=key, has_offset=has_offset, opcode=opcode, located=located,
                      expect_success=expect_success, expect_tensors=expect_tensors,
                      expect_tensor_count=expect_tensor_count, scan=scan))


def zcase(name, cls, description, pkl, code, storages=None, key=None, opcode=None, entry=PKL,
          has_offset=True, **kw):
    """A torch-like zip whose data.pkl is ``pkl``; pickle errors carry entry + offset by default."""
    add(name, cls, description, torch_zip(pkl, storages), code, entry=entry, key=key,
        has_offset=has_offset, opcode=opcode, **kw)


def sd_with(extra_items, w=True):
    """State dict {'w': tensor, **extra} with the hostile part in ``extra_items``."""
    items = ([("w", tensor())] if w else []) + extra_items
    return state_dict(items)


OP = {name: ord(op.code) for name, op in OPCODES.items()}


def build_cases():
    # ---------------------------------------------------------------- class 0: valid baselines
    base_pkl = P(state_dict([("w", tensor())]))
    check_disassembles(base_pkl)
    v = python_load(base_pkl)
    assert list(v) == ["w"] and v["w"].size == (4,) and v["w"].stride == (1,)
    assert v["w"].storage[0:2] == ("PID", "storage") and v["w"].storage[3:] == ("0", "cpu", 4)
    base_zip = torch_zip(base_pkl)
    with zipfile.ZipFile(io.BytesIO(base_zip)) as z:
        assert z.testzip() is None
        assert z.read("archive/data.pkl") == base_pkl
        assert z.read("archive/data/0") == W4
    add("valid-baseline", 0, "well-formed torch-like zip: OrderedDict {'w': float32[4]}", base_zip, None,
        expect_success=True, expect_tensors=["w"])

    p4 = asm([("PROTO", 4)])
    body4 = asm([
        ("SHORT_BINUNICODE", "collections"), "MEMOIZE", ("SHORT_BINUNICODE", "OrderedDict"), "MEMOIZE",
        "STACK_GLOBAL", "MEMOIZE", "EMPTY_TUPLE", "REDUCE", "MEMOIZE",
        ("SHORT_BINUNICODE", "w"), "MEMOIZE",
        ("SHORT_BINUNICODE", "torch._utils"), "MEMOIZE", ("SHORT_BINUNICODE", "_rebuild_tensor_v2"), "MEMOIZE",
        "STACK_GLOBAL", "MEMOIZE",
        "MARK", "MARK", ("SHORT_BINUNICODE", "storage"), "MEMOIZE",
        ("SHORT_BINUNICODE", "torch"), "MEMOIZE", ("SHORT_BINUNICODE", "FloatStorage"), "MEMOIZE",
        "STACK_GLOBAL", "MEMOIZE", ("SHORT_BINUNICODE", "0"), "MEMOIZE", ("SHORT_BINUNICODE", "cpu"),
        "MEMOIZE", ("BININT1", 4), "TUPLE", "MEMOIZE", "BINPERSID",
        ("BININT1", 0), ("BININT1", 4), "TUPLE1", "MEMOIZE", ("BININT1", 1), "TUPLE1", "MEMOIZE", "NEWFALSE",
        ("BINGET", 2), "EMPTY_TUPLE", "REDUCE", "MEMOIZE", "TUPLE", "MEMOIZE", "REDUCE", "MEMOIZE",
        "SETITEM", "STOP"])
    proto4 = p4 + asm([("FRAME", len(body4))]) + body4
    check_disassembles(proto4)
    assert list(python_load(proto4)) == ["w"]
    add("valid-proto4-framed", 0, "protocol 4 with FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL",
        torch_zip(proto4), None, expect_success=True, expect_tensors=["w"])

    add("valid-prefix-basename", 0, "entries under 'resnet_tiny/' instead of 'archive/'",
        torch_zip(base_pkl, prefix="resnet_tiny"), None, expect_success=True, expect_tensors=["w"])

    legacy_main = P(state_dict([("w", legacy_tensor())]))
    check_disassembles(legacy_main)
    assert list(python_load(legacy_main)) == ["w"]
    add("valid-legacy", 0, "well-formed legacy (pre-1.6) stream with one float32[4] storage",
        legacy_stream(legacy_main), None, expect_success=True, expect_tensors=["w"])

    # ---------------------------------------------------------------- class 1: code-running globals
    def evil_call(mod, name, arg="echo pwned"):
        return [G(mod, name), S(arg), "TUPLE1", "REDUCE"]

    for nm, mod, fn, desc in [
        ("global-os-system", "os", "system", "GLOBAL os.system via REDUCE"),
        ("global-posix-system", "posix", "system", "GLOBAL posix.system via REDUCE"),
        ("global-subprocess-popen", "subprocess", "Popen", "GLOBAL subprocess.Popen via REDUCE"),
        ("global-subprocess-check-output", "subprocess", "check_output", "GLOBAL subprocess.check_output"),
        ("global-builtins-eval", "builtins", "eval", "GLOBAL builtins.eval via REDUCE"),
        ("global-builtins-exec", "builtins", "exec", "GLOBAL builtins.exec via REDUCE"),
        ("global-builtin-py2-eval", "__builtin__", "eval", "GLOBAL __builtin__.eval (Python 2 module name)"),
        ("global-builtins-import", "builtins", "__import__", "GLOBAL builtins.__import__('os')"),
        ("global-pip-main", "pip", "main", "GLOBAL pip.main (picklescan bypass)"),
        ("global-bdb-run", "bdb", "Bdb.run", "GLOBAL bdb 'Bdb.run' (dotted name, picklescan bypass)"),
        ("global-importlib", "importlib", "import_module", "GLOBAL importlib.import_module"),
        ("global-torch-load", "torch", "load", "GLOBAL torch.load: a torch function off the allowlist"),
        ("global-torch-storage-load-from-bytes", "torch.storage", "_load_from_bytes",
         "GLOBAL torch.storage._load_from_bytes (calls torch.load on embedded bytes)"),
        ("global-numpy-load", "numpy", "load", "GLOBAL numpy.load: numpy, but not an inert class"),
    ]:
        zcase(nm, 1, desc, P(sd_with([("x", evil_call(mod, fn))])), "disallowedGlobal",
              key=mod + "." + fn, opcode=OP["GLOBAL"])

    zcase("global-builtins-getattr", 1, "builtins.getattr(builtins.__import__('os'), 'system') chain",
          P(sd_with([("x", [G("builtins", "getattr"), S("os"), S("system"), "TUPLE2", "REDUCE"])])),
          "disallowedGlobal", key="builtins.getattr", opcode=OP["GLOBAL"])
    zcase("global-dotted-eval-call", 1, "GLOBAL 'builtins' 'eval.__call__' (dotted name)",
          P(sd_with([("x", evil_call("builtins", "eval.__call__", "1+1"))])), "disallowedGlobal",
          key="builtins.eval.__call__", opcode=OP["GLOBAL"])
    zcase("global-inspect-getattr-static", 1, "GLOBAL inspect.getattr_static",
          P(sd_with([("x", [G("inspect", "getattr_static"), S("os"), S("system"), "TUPLE2", "REDUCE"])])),
          "disallowedGlobal", key="inspect.getattr_static", opcode=OP["GLOBAL"])
    zcase("global-in-hooks", 1, "os.system hidden in the backward_hooks argument of an allowed rebuild",
          P(state_dict([("w", tensor(hooks=evil_call("os", "system")))])), "disallowedGlobal",
          key="os.system", opcode=OP["GLOBAL"])
    zcase("global-via-copyreg", 1, "copyreg._reconstructor (allowed) with os.system as its class",
          P(sd_with([("x", [G("copyreg", "_reconstructor"), G("os", "system"), G("builtins", "object"),
                            S("id"), "TUPLE3", "REDUCE"])])),
          "disallowedGlobal", key="os.system", opcode=OP["GLOBAL"])

    # STACK_GLOBAL (protocol 4)
    zcase("stack-global-os-system", 1, "STACK_GLOBAL os.system",
          P4(sd_with([("x", [("SHORT_BINUNICODE", "os"), ("SHORT_BINUNICODE", "system"), "STACK_GLOBAL",
                             ("SHORT_BINUNICODE", "id"), "TUPLE1", "REDUCE"])]), proto=4),
          "disallowedGlobal", key="os.system", opcode=OP["STACK_GLOBAL"])
    zcase("stack-global-from-memo", 1, "STACK_GLOBAL whose module and name strings come from the memo",
          P4(sd_with([("x", [("SHORT_BINUNICODE", "subprocess"), ("LONG_BINPUT", 1000),
                             ("SHORT_BINUNICODE", "check_output"), ("LONG_BINPUT", 1001), "POP", "POP",
                             ("LONG_BINGET", 1000), ("LONG_BINGET", 1001), "STACK_GLOBAL",
                             ("SHORT_BINUNICODE", "id"), "TUPLE1", "REDUCE"])]), proto=4),
          "disallowedGlobal", key="subprocess.check_output", opcode=OP["STACK_GLOBAL"])
    zcase("stack-global-builtins-eval", 1, "STACK_GLOBAL builtins.eval",
          P4(sd_with([("x", [("SHORT_BINUNICODE", "builtins"), ("SHORT_BINUNICODE", "eval"), "STACK_GLOBAL",
                             ("SHORT_BINUNICODE", "1"), "TUPLE1", "REDUCE"])]), proto=4),
          "disallowedGlobal", key="builtins.eval", opcode=OP["STACK_GLOBAL"])
    zcase("stack-global-non-string", 1, "STACK_GLOBAL with int module and name",
          P4(sd_with([("x", [("BININT1", 1), ("BININT1", 2), "STACK_GLOBAL"])]), proto=4),
          "invalidGlobal", opcode=OP["STACK_GLOBAL"])
    zcase("stack-global-bytes", 1, "STACK_GLOBAL with bytes (not str) module and name",
          P4(sd_with([("x", [("SHORT_BINBYTES", b"os"), ("SHORT_BINBYTES", b"system"), "STACK_GLOBAL"])]),
             proto=4),
          "invalidGlobal", opcode=OP["STACK_GLOBAL"])
    zcase("stack-global-newline", 1, "STACK_GLOBAL with a newline inside the module name",
          P4(sd_with([("x", [("SHORT_BINUNICODE", "collections\nOrderedDict"), ("SHORT_BINUNICODE", "x"),
                             "STACK_GLOBAL"])]), proto=4),
          "invalidGlobal", opcode=OP["STACK_GLOBAL"])
    zcase("global-empty-name", 1, "GLOBAL 'os' '' (empty name)",
          P(sd_with([("x", [G("os", "")])])), "invalidGlobal", opcode=OP["GLOBAL"])
    zcase("global-empty-module", 1, "GLOBAL '' 'system' (empty module)",
          P(sd_with([("x", [G("", "system")])])), "invalidGlobal", opcode=OP["GLOBAL"])

    # INST / OBJ / NEWOBJ
    zcase("inst-os-system", 1, "INST os.system ('id')",
          P(sd_with([("x", ["MARK", S("id"), ("INST", ("os", "system"))])])), "disallowedGlobal",
          key="os.system", opcode=OP["INST"])
    zcase("obj-subprocess-popen", 1, "OBJ subprocess.Popen ('id')",
          P(sd_with([("x", ["MARK", G("subprocess", "Popen"), S("id"), "OBJ"])])), "disallowedGlobal",
          key="subprocess.Popen", opcode=OP["GLOBAL"])
    zcase("newobj-bdb", 1, "NEWOBJ bdb.Bdb()",
          P(sd_with([("x", [G("bdb", "Bdb"), "EMPTY_TUPLE", "NEWOBJ"])])), "disallowedGlobal",
          key="bdb.Bdb", opcode=OP["GLOBAL"])
    zcase("newobj-ex-os-system", 1, "NEWOBJ_EX on a refused class (protocol 4)",
          P4(sd_with([("x", [("SHORT_BINUNICODE", "subprocess"), ("SHORT_BINUNICODE", "Popen"), "STACK_GLOBAL",
                             ("SHORT_BINUNICODE", "id"), "TUPLE1", "EMPTY_DICT", "NEWOBJ_EX"])]), proto=4),
          "disallowedGlobal", key="subprocess.Popen", opcode=OP["STACK_GLOBAL"])

    # EXT1/2/4 (copyreg extension registry)
    for nm, op, arg in [("ext1", "EXT1", 1), ("ext2", "EXT2", 0x1234), ("ext4", "EXT4", 0x7FFFFFFF)]:
        zcase("%s-registry" % nm, 1, "%s %d (extension registry would import a global)" % (op, arg),
              P(sd_with([("x", [(op, arg), S("id"), "TUPLE1", "REDUCE"])])), "extensionRegistry",
              opcode=OP[op])

    # ---------------------------------------------------------------- class 2: inert objects
    ns = [G("argparse", "Namespace"), "EMPTY_TUPLE", "NEWOBJ",
          plain_dict([("lr", [("BINFLOAT", 0.1)]), ("arch", S("resnet50")), ("epochs", I(90))]), "BUILD"]
    ns_pkl = P(plain_dict([("model", state_dict([("w", tensor())])), ("epoch", I(89)), ("args", ns)]))
    python_load(ns_pkl)
    zcase("inert-argparse-namespace", 2, "training checkpoint {'model': sd, 'epoch', 'args': Namespace}",
          ns_pkl, None, entry=None, has_offset=False, expect_success=True, expect_tensor_count=1)

    ns_obj = ["MARK", G("argparse", "Namespace"), "OBJ", plain_dict([("lr", [("BINFLOAT", 0.1)])]), "BUILD"]
    ns_inst = ["MARK", ("INST", ("argparse", "Namespace")), plain_dict([("seed", I(0))]), "BUILD"]
    ns_reduce = [G("argparse", "Namespace"), "EMPTY_TUPLE", "REDUCE"]
    ns3 = P(plain_dict([("state_dict", state_dict([("w", tensor())])), ("a", ns_obj), ("b", ns_inst),
                        ("c", ns_reduce)]))
    python_load(ns3)
    zcase("inert-namespace-obj-inst-reduce", 2, "argparse.Namespace built by OBJ, INST and REDUCE",
          ns3, None, entry=None, has_offset=False, expect_success=True, expect_tensor_count=1)

    md = [G("collections", "OrderedDict"), ("BINPUT", 0), "EMPTY_TUPLE", "REDUCE", "MARK", S("w"), tensor(),
          "SETITEMS", plain_dict([("_metadata", [("BINGET", 0), "EMPTY_TUPLE", "REDUCE", "MARK", S(""),
                                                 plain_dict([("version", I(1))]), S("fc"),
                                                 plain_dict([("version", I(1))]), "SETITEMS"])]), "BUILD"]
    md_pkl = P(md)
    python_load(md_pkl)
    zcase("inert-state-dict-metadata", 2, "state dict with _metadata set by BUILD after its items",
          md_pkl, None, entry=None, has_offset=False, expect_success=True, expect_tensors=["w"])

    ts = [G("__torch__", "Net"), "EMPTY_TUPLE", "NEWOBJ",
          plain_dict([("training", ["NEWTRUE"]),
                      ("fc", [G("__torch__.torch.nn.modules.linear", "Linear"), "EMPTY_TUPLE", "NEWOBJ",
                              plain_dict([("training", ["NEWTRUE"]), ("weight", tensor())]), "BUILD"])]),
          "BUILD"]
    ts_pkl = P(ts)
    python_load(ts_pkl)
    ts_extra = [ZEntry("archive/constants.pkl", P(["EMPTY_TUPLE"])),
                ZEntry("archive/code/__torch__.py", b"def forward(self, x):\n    import os\n    os.system('id')\n"),
                ZEntry("archive/extra/producer_info.json", b"{}")]
    add("inert-torchscript-modules", 2,
        "TorchScript-like archive: __torch__.Net / __torch__...Linear objects restored by BUILD, plus code/",
        torch_zip(ts_pkl, extra=ts_extra), None, expect_success=True, expect_tensor_count=1, scan="dangerous")

    dtype = [G("numpy", "dtype"), S("f8"), "NEWFALSE", "NEWTRUE", "TUPLE3", "REDUCE",
             ["MARK", I(3), S("<"), "NONE", "NONE", "NONE", I(-1), I(-1), I(0), "TUPLE"], "BUILD"]
    scalar = [G("numpy.core.multiarray", "scalar"), dtype,
              [G("_codecs", "encode"), S("\u00e9\u00a3\u00da\u00ee\u00b1\u00c1\u00ee?"), S("latin1"), "TUPLE2",
               "REDUCE"], "TUPLE2", "REDUCE"]
    np_pkl = P(plain_dict([("state_dict", state_dict([("w", tensor())])), ("best_acc1", scalar)]))
    python_load(np_pkl)
    zcase("inert-numpy-scalar", 2, "{'state_dict': sd, 'best_acc1': numpy scalar float64 via _codecs.encode}",
          np_pkl, None, entry=None, has_offset=False, expect_success=True, expect_tensor_count=1)

    nd = [G("numpy._core.multiarray", "_reconstruct"), G("numpy", "ndarray"), ints((0,)),
          [("SHORT_BINBYTES", b"b")], "TUPLE3", "REDUCE",
          ["MARK", I(1), ints((2,)), [G("numpy", "dtype"), S("i8"), "NEWFALSE", "NEWTRUE", "TUPLE3", "REDUCE"],
           "NEWFALSE", [("SHORT_BINBYTES", struct.pack("<qq", 7, 8))], "TUPLE"], "BUILD"]
    nd_pkl = P(plain_dict([("model", state_dict([("w", tensor())])), ("history", nd)]), proto=3)
    zcase("inert-numpy-ndarray", 2, "numpy._core.multiarray._reconstruct(ndarray) + BUILD state (protocol 3)",
          nd_pkl, None, entry=None, has_offset=False, expect_success=True, expect_tensor_count=1)

    # ---------------------------------------------------------------- class 3: wrong kinds
    zcase("build-on-list", 3, "BUILD applied to a list",
          P(sd_with([("x", ["EMPTY_LIST", plain_dict([("a", I(1))]), "BUILD"])])), "wrongType", opcode=OP["BUILD"])
    zcase("build-on-int", 3, "BUILD applied to an int",
          P(sd_with([("x", [I(7), plain_dict([("a", I(1))]), "BUILD"])])), "wrongType", opcode=OP["BUILD"])
    zcase("build-on-tensor", 3, "BUILD applied to a tensor",
          P(sd_with([("x", [tensor(), plain_dict([("a", I(1))]), "BUILD"])])), "wrongType", opcode=OP["BUILD"])
    zcase("setitem-on-list", 3, "SETITEM on a list",
          P(sd_with([("x", ["EMPTY_LIST", S("k"), I(1), "SETITEM"])])), "wrongType", opcode=OP["SETITEM"])
    zcase("setitems-on-tuple", 3, "SETITEMS on a tuple",
          P(sd_with([("x", [ints((1, 2)), "MARK", S("k"), I(1), "SETITEMS"])])), "wrongType",
          opcode=OP["SETITEMS"])
    zcase("setitem-on-tensor", 3, "SETITEM on a tensor (CVE-2026-24747 pattern)",
          P(state_dict([("w", [tensor(), S("k"), I(1), "SETITEM"])])), "wrongType", opcode=OP["SETITEM"])
    zcase("append-on-dict", 3, "APPEND on a dict",
          P(sd_with([("x", ["EMPTY_DICT", I(1), "APPEND"])])), "wrongType", opcode=OP["APPEND"])
    zcase("appends-on-tensor", 3, "APPENDS on a tensor",
          P(state_dict([("w", [tensor(), "MARK", I(1), I(2), "APPENDS"])])), "wrongType", opcode=OP["APPENDS"])
    zcase("appends-on-ordereddict", 3, "APPENDS on an OrderedDict",
          P([odict(), "MARK", I(1), "APPENDS"]), "wrongType", opcode=OP["APPENDS"])
    zcase("reduce-callable-int", 3, "REDUCE whose callable is an int",
          P(sd_with([("x", [I(5), "EMPTY_TUPLE", "REDUCE"])])), "wrongType", opcode=OP["REDUCE"])
    zcase("reduce-callable-string", 3, "REDUCE whose callable is a string 'os.system'",
          P(sd_with([("x", [S("os.system"), S("id"), "TUPLE1", "REDUCE"])])), "wrongType", opcode=OP["REDUCE"])
    zcase("rebuild-v2-three-args", 3, "_rebuild_tensor_v2 with 3 arguments",
          P(state_dict([("w", rebuild_call([pid(), I(0), ints((4,))]))])), "badArguments", opcode=OP["REDUCE"])
    zcase("rebuild-v2-nine-args", 3, "_rebuild_tensor_v2 with 9 arguments",
          P(state_dict([("w", rebuild_call([pid(), I(0), ints((4,)), ints((1,)), "NEWFALSE", odict(), "NONE",
                                            "NONE", "NONE"]))])), "badArguments", opcode=OP["REDUCE"])
    zcase("rebuild-v2-size-int", 3, "_rebuild_tensor_v2 with size 4 instead of (4,)",
          P(state_dict([("w", tensor(size=I(4)))])), "badArguments", opcode=OP["REDUCE"])
    zcase("rebuild-v2-stride-string", 3, "_rebuild_tensor_v2 with stride '1'",
          P(state_dict([("w", tensor(stride=S("1")))])), "badArguments", opcode=OP["REDUCE"])
    zcase("rebuild-v2-storage-string", 3, "_rebuild_tensor_v2 whose storage is a string",
          P(state_dict([("w", tensor(p=S("storage")))])), "badArguments", opcode=OP["REDUCE"])
    zcase("rebuild-v2-offset-string", 3, "_rebuild_tensor_v2 with storage_offset '0'",
          P(state_dict([("w", tensor(offset=S("0")))])), "badArguments", opcode=OP["REDUCE"])
    zcase("rebuild-v2-size-of-strings", 3, "_rebuild_tensor_v2 with size ('4',)",
          P(state_dict([("w", tensor(size=tup(S("4"))))])), "badArguments", opcode=OP["REDUCE"])
    zcase("rebuild-parameter-int", 3, "_rebuild_parameter(7, False, OrderedDict())",
          P(state_dict([("w", [G("torch._utils", "_rebuild_parameter"), I(7), "NEWFALSE", odict(), "TUPLE3",
                               "REDUCE"])])), "badArguments", opcode=OP["REDUCE"])

    # ---------------------------------------------------------------- class 4: structure
    zcase("pop-empty-stack", 4, "POP on an empty stack", P(["POP"]), "stackUnderflow", opcode=OP["POP"])
    zcase("setitem-too-few", 4, "SETITEM with only two stack items",
          P(["EMPTY_DICT", I(1), "SETITEM"]), "stackUnderflow", opcode=OP["SETITEM"])
    zcase("reduce-empty-stack", 4, "REDUCE on an empty stack", P(["REDUCE"]), "stackUnderflow",
          opcode=OP["REDUCE"])
    zcase("build-one-item", 4, "BUILD with one stack item", P(["EMPTY_DICT", "BUILD"]), "stackUnderflow",
          opcode=OP["BUILD"])
    zcase("stop-empty-stack", 4, "STOP with an empty stack", P([]), "stackUnderflow", opcode=OP["STOP"])
    zcase("appends-no-mark", 4, "APPENDS without MARK", P(["EMPTY_LIST", I(1), "APPENDS"]), "missingMark",
          opcode=OP["APPENDS"])
    zcase("tuple-no-mark", 4, "TUPLE without MARK", P([I(1), I(2), "TUPLE"]), "missingMark", opcode=OP["TUPLE"])
    zcase("dict-no-mark", 4, "DICT without MARK", P([S("a"), I(1), "DICT"]), "missingMark", opcode=OP["DICT"])
    zcase("pop-mark-empty", 4, "POP_MARK with no MARK", P(["POP_MARK"]), "missingMark", opcode=OP["POP_MARK"])
    zcase("setitems-mark-consumed", 4, "SETITEMS after its MARK was consumed by TUPLE",
          P([odict(), "MARK", S("w"), "TUPLE", "SETITEMS"]), "missingMark", opcode=OP["SETITEMS"])
    zcase("missing-stop", 4, "valid state dict without the final STOP", base_pkl[:-1], "missingStop")
    zcase("missing-stop-empty", 4, "empty data.pkl", b"", "missingStop")
    zcase("missing-stop-proto-only", 4, "data.pkl is only PROTO 2", asm([("PROTO", 2)]), "missingStop")
    zcase("trailing-junk", 4, "valid pickle followed by junk bytes", base_pkl + b"junkjunk", "trailingData")
    zcase("trailing-second-pickle", 4, "valid pickle followed by a second, malicious pickle",
          base_pkl + P(evil_call("os", "system")), "trailingData")
    zcase("trailing-one-zero", 4, "valid pickle followed by one NUL byte", base_pkl + b"\x00", "trailingData")
    for byte in (0xFF, 0x01, 0x00, 0x99):
        zcase("unknown-opcode-%02x" % byte, 4, "undefined opcode byte 0x%02x inside a state dict" % byte,
              P(sd_with([("x", [("RAW", bytes([byte]))])])), "unknownOpcode", opcode=byte)
    zcase("next-buffer-no-buffers", 4, "protocol 5 NEXT_BUFFER with no out-of-band buffers",
          P(sd_with([("x", ["NEXT_BUFFER"])]), proto=5), None, entry=None, has_offset=False)

    # ---------------------------------------------------------------- class 5: memo
    zcase("memo-binget-unset", 5, "BINGET 5 never PUT", P(sd_with([("x", [("BINGET", 5)])])), "memoMissing",
          opcode=OP["BINGET"])
    zcase("memo-long-binget-unset", 5, "LONG_BINGET 0xFFFFFFFF never PUT",
          P(sd_with([("x", [("LONG_BINGET", 0xFFFFFFFF)])])), "memoMissing", opcode=OP["LONG_BINGET"])
    zcase("memo-get-text-unset", 5, "GET '7' (text) never PUT", P(sd_with([("x", [("GET", 7)])])),
          "memoMissing", opcode=OP["GET"])
    zcase("memo-get-before-put", 5, "BINGET 0 before BINPUT 0",
          P(sd_with([("x", [("BINGET", 0), "POP", I(1), ("BINPUT", 0)])])), "memoMissing", opcode=OP["BINGET"])
    huge = P(state_dict([("w", [tensor(), ("LONG_BINPUT", 0xFFFFFFFF), "POP", ("LONG_BINGET", 0xFFFFFFFF)])]))
    assert list(python_load(huge)) == ["w"]
    zcase("memo-long-binput-huge-index", 5, "LONG_BINPUT/LONG_BINGET at index 0xFFFFFFFF (legal)",
          huge, None, entry=None, has_offset=False, expect_success=True, expect_tensors=["w"])
    huge_text = P(state_dict([("w", [tensor(), ("PUT", 2 ** 40), "POP", ("GET", 2 ** 40)])]))
    assert list(python_load(huge_text)) == ["w"]
    zcase("memo-put-text-huge-index", 5, "PUT/GET (text) at index 2^40 (legal)",
          huge_text, None, entry=None, has_offset=False, expect_success=True, expect_tensors=["w"])

    def list_bomb(levels):
        ops = ["MARK", I(1), I(2), "LIST", ("LONG_BINPUT", 0)]
        for k in range(1, levels + 1):
            ops += ["POP", "MARK", ("LONG_BINGET", k - 1), ("LONG_BINGET", k - 1), "LIST", ("LONG_BINPUT", k)]
        return ops

    for levels in (20, 64, 200):
        zcase("memo-bomb-list-%d" % levels, 5,
              "memo replay: %d levels of [x, x] (2^%d logical leaves)" % (levels, levels),
              P(sd_with([("x", list_bomb(levels))])), None, entry=None, has_offset=False)

    def dict_bomb(levels, leaf):
        ops = [leaf, ("LONG_BINPUT", 0)]
        for k in range(1, levels + 1):
            ops += ["POP", "EMPTY_DICT", "MARK", S("a"), ("LONG_BINGET", k - 1), S("b"), ("LONG_BINGET", k - 1),
                    "SETITEMS", ("LONG_BINPUT", k)]
        return ops

    zcase("memo-bomb-dict-64", 5, "memo replay: 64 levels of {'a': x, 'b': x}",
          P(sd_with([("x", dict_bomb(64, I(1)))])), None, entry=None, has_offset=False)
    zcase("memo-bomb-tensor-paths-20", 5, "one tensor reachable through 2^20 key paths",
          P(dict_bomb(20, tensor())), None, entry=None, has_offset=False)
    zcase("memo-bomb-tensor-paths-62", 5, "one tensor reachable through 2^62 key paths",
          P(dict_bomb(62, tensor())), None, entry=None, has_offset=False)

    # Tensor-name amplification: one 30 000-character key, stored once and fetched from the memo at
    # each of 200 nesting levels, then 16 names for one tensor at the bottom: 16 names of 6 MB each
    # from a file of ~1 KB. (Scaled up, e.g. 1000 levels x 64 names, it is a memory bomb for any
    # reader that builds full names eagerly without a cap.)
    step = asm([("LONG_BINGET", 5), "EMPTY_DICT", ("BINPUT", 0), "SETITEM", "POP", ("BINGET", 0)])
    bottom = ["MARK", S("t0"), tensor(), ("LONG_BINPUT", 6)]
    for i in range(1, 16):
        bottom += [S("t%d" % i), ("LONG_BINGET", 6)]
    names = asm([("PROTO", 2), ("BINUNICODE", "k" * 30000), ("LONG_BINPUT", 5), "POP",
                 "EMPTY_DICT", ("BINPUT", 1), ("BINPUT", 0), ("RAW", step * 200), bottom, "SETITEMS", "POP",
                 ("BINGET", 1), "STOP"])
    add("memo-name-expansion", 5, "a 30 000-char key fetched from the memo at 200 levels: 16 tensor names of 6 MB",
        build_zip(torch_entries(names, pkl_method=8))[0], None)

    # Replay bombs that copy or alias a whole container per replay: each replay is 3-4 bytes, each
    # costs thousands of elements. The reader charges copied and aliased elements to its ops budget
    # (at most 1M + 16 units per byte of pickle), so each is refused early with limitExceeded.
    def sbu(text):
        d = text.encode()
        return b"\x8c" + bytes([len(d)]) + d

    build_replay = asm([("PROTO", 2), odict(), "MARK", S("w"), tensor(), S("x"), "EMPTY_DICT",
                        "EMPTY_DICT", ("BINPUT", 1), "MARK",
                        ("RAW", b"".join(sbu("k%d" % i) + b"N" for i in range(3000))), "SETITEMS", "POP",
                        ("RAW", b"h\x01b" * 8000), "SETITEMS", "STOP"])
    zcase("memo-bomb-build-replay", 5, "BUILD of one 3000-attribute dict replayed 8000 times (24M attribute copies)",
          build_replay, "limitExceeded", opcode=OP["BUILD"])

    pairs = b"".join(b"M" + struct.pack("<H", i) + b"N\x86" for i in range(5000))
    odict_replay = asm([("PROTO", 2), G("collections", "OrderedDict"), ("BINPUT", 4), "POP",
                        "MARK", ("RAW", pairs), "LIST", "TUPLE1", ("BINPUT", 3), "POP",
                        "EMPTY_LIST", ("RAW", b"h\x04h\x03Ra" * 6000), "STOP"])
    zcase("memo-bomb-ordereddict-replay", 5, "OrderedDict(pairs) of 5000 pairs replayed 6000 times (30M entries)",
          odict_replay, "limitExceeded", opcode=OP["REDUCE"])

    set_alias = asm([("PROTO", 2), "EMPTY_LIST", ("BINPUT", 5), "POP", "MARK", ("RAW", b"h\x05" * 10000), "LIST",
                     "TUPLE1", ("BINPUT", 6), "POP", G("builtins", "set"), ("BINPUT", 7), "POP",
                     "EMPTY_LIST", ("RAW", b"h\x07h\x06Ra" * 7000), "STOP"])
    zcase("memo-bomb-set-alias", 5, "set(list of 10000) replayed 7000 times: 70M elements to walk, none stored twice",
          set_alias, "limitExceeded", opcode=OP["REDUCE"])

    size_replay = asm([("PROTO", 2), "MARK", ("RAW", b"K\x01" * 10000), "LIST", "TUPLE1", ("BINPUT", 6), "POP",
                       G("torch", "Size"), ("BINPUT", 7), "POP",
                       "EMPTY_LIST", ("RAW", b"h\x07h\x06Ra" * 7000), "STOP"])
    zcase("memo-bomb-torch-size-replay", 5, "torch.Size(10000 dims) replayed 7000 times (70M dims)",
          size_replay, "limitExceeded", opcode=OP["REDUCE"])

    # ---------------------------------------------------------------- class 6: lengths
    def length_case(name, desc, raw, code="badLength", op=None):
        pkl = asm([("PROTO", 2), odict(), "MARK", S("w"), tensor(), S("x"), ("RAW", raw)])
        zcase(name, 6, desc, pkl, code, opcode=op)

    length_case("binunicode-beyond-end", "BINUNICODE of 1000 bytes with 3 left",
                b"X" + struct.pack("<I", 1000) + b"abc", op=OP["BINUNICODE"])
    length_case("binunicode-4gib", "BINUNICODE length 0xFFFFFFFF",
                b"X" + struct.pack("<I", 0xFFFFFFFF) + b"abc", op=OP["BINUNICODE"])
    length_case("binbytes-beyond-end", "BINBYTES of 65536 bytes with 4 left",
                b"B" + struct.pack("<I", 65536) + b"abcd", op=OP["BINBYTES"])
    length_case("short-binbytes-beyond-end", "SHORT_BINBYTES of 200 bytes with 5 left",
                b"C" + bytes([200]) + b"abcde", op=OP["SHORT_BINBYTES"])
    length_case("binunicode8-near-2-63", "BINUNICODE8 length 2^63-1",
                b"\x8d" + struct.pack("<Q", 2 ** 63 - 1) + b"abc", op=OP["BINUNICODE8"])
    length_case("binbytes8-2-64-minus-1", "BINBYTES8 length 2^64-1 (negative as Int64)",
                b"\x8e" + struct.pack("<Q", 2 ** 64 - 1) + b"abc", op=OP["BINBYTES8"])
    length_case("bytearray8-2-63", "BYTEARRAY8 length 2^63",
                b"\x96" + struct.pack("<Q", 2 ** 63) + b"abc", op=OP["BYTEARRAY8"])
    length_case("binstring-negative", "BINSTRING length -5",
                b"T" + struct.pack("<i", -5) + b"abcde", op=OP["BINSTRING"])
    length_case("long4-2-31-minus-1", "LONG4 length 2^31-1",
                b"\x8b" + struct.pack("<i", 2 ** 31 - 1) + b"\x01\x02", op=OP["LONG4"])
    length_case("long4-negative", "LONG4 length -1",
                b"\x8b" + struct.pack("<i", -1) + b"\x01\x02", op=OP["LONG4"])
    zcase("frame-beyond-end", 6, "FRAME of 2^62 bytes",
          asm([("PROTO", 4), ("FRAME", 2 ** 62)]) + asm([base_pkl[2:]]), "badLength", opcode=OP["FRAME"])
    zcase("frame-slightly-beyond-end", 6, "FRAME 10 bytes longer than the rest of the pickle",
          asm([("PROTO", 4), ("FRAME", len(base_pkl) - 2 + 10)]) + base_pkl[2:], "badLength", opcode=OP["FRAME"])
    length_case("binint-truncated", "BININT with 2 bytes left", b"J\x01\x02", code="truncated", op=OP["BININT"])
    length_case("binfloat-truncated", "BINFLOAT with 3 bytes left", b"G\x3f\xf0\x00", code="truncated",
                op=OP["BINFLOAT"])
    length_case("long-binget-truncated", "LONG_BINGET with 1 byte left", b"j\x01", code="truncated",
                op=OP["LONG_BINGET"])
    length_case("binunicode-length-truncated", "BINUNICODE whose 4-byte length has 2 bytes", b"X\x05\x00",
                code="truncated", op=OP["BINUNICODE"])
    zcase("proto-truncated", 6, "data.pkl is the single byte 0x80 (PROTO without its operand)", b"\x80",
          "truncated", opcode=OP["PROTO"])
    for nm, desc, raw in [
        ("utf8-invalid-ff", "BINUNICODE with bytes ff fe", b"X" + struct.pack("<I", 2) + b"\xff\xfe"),
        ("utf8-surrogate", "BINUNICODE with an encoded surrogate ed a0 80", b"X" + struct.pack("<I", 3) + b"\xed\xa0\x80"),
        ("utf8-overlong", "BINUNICODE with the overlong '/' c0 af", b"X" + struct.pack("<I", 2) + b"\xc0\xaf"),
        ("utf8-truncated-sequence", "BINUNICODE ending inside a 3-byte sequence", b"X" + struct.pack("<I", 2) + b"a\xe2"),
    ]:
        zcase(nm, 6, desc, P(sd_with([("x", [("RAW", raw)])])), "invalidUTF8", opcode=OP["BINUNICODE"])
    zcase("utf8-invalid-dict-key", 6, "state dict key with invalid UTF-8 (SHORT_BINUNICODE)",
          P4(state_dict([]) + ["MARK", ("SHORT_BINUNICODE", b"w\xff"), tensor(), "SETITEMS"]),
          "invalidUTF8", opcode=OP["SHORT_BINUNICODE"])
    zcase("utf8-invalid-global", 6, "GLOBAL with invalid UTF-8 in the module name",
          P(sd_with([("x", [("GLOBAL", (b"os\xff", b"system"))])])), None, entry=None, has_offset=False)

    # frames
    straddle_body = asm([odict(), "MARK", S("w"), tensor(), S("x"), ("BININT", 0x01020304), "SETITEMS", "STOP"])
    j = straddle_body.rindex(b"J" + struct.pack("<i", 0x01020304))
    zcase("frame-straddle-binint", 6, "FRAME ends after 2 bytes of a BININT operand",
          asm([("PROTO", 4), ("FRAME", j + 3)]) + straddle_body, "frameBoundary")
    u_body = asm([odict(), "MARK", S("w"), tensor(), ("SHORT_BINUNICODE", "abcdefgh"), I(1), "SETITEMS", "STOP"])
    k = u_body.rindex(b"abcdefgh")
    zcase("frame-straddle-string", 6, "FRAME ends inside a SHORT_BINUNICODE's string",
          asm([("PROTO", 4), ("FRAME", k + 4)]) + u_body, "frameBoundary")
    zcase("frame-straddle-opcode-then-stop", 6, "FRAME ends after the BININT1 opcode byte; no next frame",
          asm([("PROTO", 4), ("FRAME", 1), ("RAW", b"K"), ("RAW", b"\x05"), "STOP"]), "frameBoundary")
    zcase("frame-nested", 6, "FRAME opcode inside an unfinished frame",
          asm([("PROTO", 4), ("FRAME", 20), ("FRAME", 2), ("BININT1", 1), "STOP"]) + b"\x00" * 8,
          "frameBoundary")
    zcase("proto-6", 6, "PROTO 6", asm([("PROTO", 6)]) + base_pkl[2:], "unsupportedProtocol", opcode=OP["PROTO"])
    zcase("proto-255", 6, "PROTO 255", asm([("PROTO", 255)]) + base_pkl[2:], "unsupportedProtocol",
          opcode=OP["PROTO"])
    zcase("long1-giant", 6, "LONG1 with 254 bytes (a 2031-bit int) as a dict value",
          P(sd_with([("x", [("LONG1", 2 ** 2030 + 12345)])])), None, entry=None, has_offset=False)
    zcase("long4-giant-size", 6, "LONG4 60000-byte int used as a tensor size",
          P(state_dict([("w", tensor(size=tup([("LONG4", 2 ** (8 * 60000 - 2))])))])), None, entry=None,
          has_offset=False)

    # ---------------------------------------------------------------- class 7: depth and cycles
    zcase("marks-1500-nested-tuples", 7, "1500 nested MARK ... TUPLE",
          P(["MARK"] * 1500 + ["TUPLE"] * 1500), "limitExceeded")
    zcase("marks-60000", 7, "60000 MARKs in a row", asm([("PROTO", 2)]) + b"(" * 60000 + b".", "limitExceeded")

    def deflated_case(name, desc, pkl, code=None):
        data, _ = build_zip(torch_entries(pkl, pkl_method=8))
        add(name, 7, desc, data, code, entry=PKL if code else None, has_offset=code is not None)

    deep_stack = asm([("PROTO", 2), ("RAW", b"]" * 1000001), ("RAW", b"a" * 1000000), "STOP"])
    deflated_case("deep-list-1m-stack", "list nested 1M deep (1M EMPTY_LISTs then 1M APPENDs), deflated",
                  deep_stack)
    step = asm(["EMPTY_LIST", ("BINPUT", 0), "APPEND", "POP", ("BINGET", 0)])
    deep_memo = asm([("PROTO", 2), "EMPTY_LIST", ("BINPUT", 1), ("BINPUT", 0), ("RAW", step * 300000), "POP",
                     ("BINGET", 1), "STOP"])
    deflated_case("deep-list-300k-memo", "list nested 300k deep via memo (constant stack), deflated", deep_memo)
    dstep = asm([S("a"), "EMPTY_DICT", ("BINPUT", 0), "SETITEM", "POP", ("BINGET", 0)])
    deep_dict = asm([("PROTO", 2), odict(), ("BINPUT", 1), ("BINPUT", 0), ("RAW", dstep * 100000),
                     S("w"), tensor(), "SETITEM", "POP", ("BINGET", 1), "STOP"])
    deflated_case("deep-dict-tensor-leaf", "a tensor under 100k nested dicts ('a.a.a....w'), deflated", deep_dict)
    shallow = asm([("PROTO", 2), ("RAW", b"]" * 30001), ("RAW", b"a" * 30000), "STOP"])
    zcase("deep-list-30k-stored", 7, "list nested 30k deep, stored uncompressed", shallow, None, entry=None,
          has_offset=False)
    zcase("cycle-list-self", 7, "a list appended to itself", P(["EMPTY_LIST", ("BINPUT", 0), ("BINGET", 0), "APPEND"]),
          None, entry=None, has_offset=False)
    zcase("cycle-state-dict-self", 7, "state dict containing itself under 'self'",
          P([odict(), ("BINPUT", 0), "MARK", S("w"), tensor(), S("self"), ("BINGET", 0), "SETITEMS"]), None,
          entry=None, has_offset=False)
    zcase("cycle-mutual", 7, "two dicts containing each other, with a tensor",
          P(["EMPTY_DICT", ("BINPUT", 0), S("b"), "EMPTY_DICT", ("BINPUT", 1), S("a"), ("BINGET", 0), "SETITEM",
             S("w"), tensor(), "SETITEM", "SETITEM"]), None, entry=None, has_offset=False)
    zcase("cycle-namespace-build", 7, "Namespace whose BUILD state contains itself",
          P(plain_dict([("model", state_dict([("w", tensor())])),
                        ("args", [G("argparse", "Namespace"), "EMPTY_TUPLE", "NEWOBJ", ("BINPUT", 9), "EMPTY_DICT",
                                  S("me"), ("BINGET", 9), "SETITEM", "BUILD"])])), None, entry=None, has_offset=False)

    # ---------------------------------------------------------------- class 8: tensors that lie
    def tcase(name, desc, pkl, code, storages=None, **kw):
        add(name, 8, desc, torch_zip(pkl, storages), code, located=code is not None, **kw)

    tcase("tensor-storage-short", "numel 16 but data/0 holds 4 floats",
          P(state_dict([("w", tensor(p=pid(numel=16), size=(16,)))])), "storageMismatch")
    tcase("tensor-storage-short-by-one-byte", "numel 4 but data/0 holds 15 bytes",
          P(state_dict([("w", tensor())])), "storageMismatch", storages={"0": W4[:15]})
    tcase("tensor-offset-out-of-bounds", "storage_offset 10 into a 4-element storage",
          P(state_dict([("w", tensor(offset=10, size=(2,)))])), "tensorOutOfBounds")
    tcase("tensor-stride-out-of-bounds", "size (4,4) stride (8,1) over 16 elements (reach 28)",
          P(state_dict([("w", tensor(p=pid(numel=16), size=(4, 4), stride=(8, 1)))])), "tensorOutOfBounds",
          storages={"0": floats(range(16))})
    tcase("tensor-offset-plus-reach-one-over", "offset 1 + 4 contiguous elements over a 4-element storage",
          P(state_dict([("w", tensor(offset=1))])), "tensorOutOfBounds")
    tcase("tensor-huge-stride", "size (2,) stride (2^40,)",
          P(state_dict([("w", tensor(size=(2,), stride=(2 ** 40,)))])), "tensorOutOfBounds")
    tcase("tensor-huge-offset", "storage_offset 2^62",
          P(state_dict([("w", tensor(offset=2 ** 62))])), "tensorOutOfBounds")
    tcase("tensor-negative-size", "size (-1,)", P(state_dict([("w", tensor(size=(-1,)))])), "badShape")
    tcase("tensor-negative-stride", "stride (-1,) on size (4,)",
          P(state_dict([("w", tensor(stride=(-1,)))])), "badShape")
    tcase("tensor-negative-size-2d", "size (2,-2) stride (-2,1)",
          P(state_dict([("w", tensor(size=(2, -2), stride=(-2, 1)))])), "badShape")
    tcase("tensor-shape-overflow", "size (2^32, 2^32, 16): element count overflows Int64",
          P(state_dict([("w", tensor(size=(2 ** 32, 2 ** 32, 16), stride=(0, 0, 0)))])), "badShape")
    tcase("tensor-shape-overflow-exact", "size (2^62, 4) stride (0, 0)",
          P(state_dict([("w", tensor(size=(2 ** 62, 4), stride=(0, 0)))])), "badShape")
    tcase("tensor-zero-stride-terabytes", "size (10^12,) stride (0,) over one float: claims 4 TB",
          P(state_dict([("w", tensor(p=pid(numel=1), size=(10 ** 12,), stride=(0,)))])), "limitExceeded",
          storages={"0": floats([1.0])})
    tcase("tensor-zero-stride-2d", "size (10^6, 10^6) stride (0, 0)",
          P(state_dict([("w", tensor(p=pid(numel=1), size=(10 ** 6, 10 ** 6), stride=(0, 0)))])), "limitExceeded",
          storages={"0": floats([1.0])})
    tcase("tensor-reach-overflow", "size (2^40, 2^40) stride (2^40, 2^40): reach overflows",
          P(state_dict([("w", tensor(size=(2 ** 40, 2 ** 40), stride=(2 ** 40, 2 ** 40)))])), None)
    tcase("tensor-numel-overflow-bytes", "persistent id numel 2^62 (bytes overflow) over 16 bytes",
          P(state_dict([("w", tensor(p=pid(numel=2 ** 62)))])), None)
    tcase("tensor-numel-negative", "persistent id numel -4", P(state_dict([("w", tensor(p=pid(numel=-4)))])), None)
    tcase("tensor-offset-negative", "storage_offset -1", P(state_dict([("w", tensor(offset=-1, size=(2,)))])), None)
    tcase("tensor-size-stride-rank-mismatch", "size (2,2) stride (1,)",
          P(state_dict([("w", tensor(size=(2, 2), stride=(1,)))])), None)
    tcase("tensor-missing-entry", "persistent id names data/7, which is absent",
          P(state_dict([("w", tensor(p=pid(key="7")))])), "missingEntry")
    tcase("tensor-missing-entry-second", "second tensor's storage '1' absent",
          P(state_dict([("w", tensor()), ("v", tensor(p=pid(key="1")))])), "missingEntry")
    tcase("tensor-missing-entry-empty-key", "persistent id key '' (names the folder archive/data/)",
          P(state_dict([("w", tensor(p=pid(key="")))])), None)
    zcase("tensor-evil-storage-class", 8, "storage class torch.EvilStorage",
          P(state_dict([("w", tensor(p=pid(storage="EvilStorage")))])), "disallowedGlobal",
          key="torch.EvilStorage", opcode=OP["GLOBAL"])
    zcase("tensor-storage-class-os-system", 8, "storage class os.system",
          P(state_dict([("w", tensor(p=pid(storage_mod="os", storage="system")))])), "disallowedGlobal",
          key="os.system", opcode=OP["GLOBAL"])
    tcase("tensor-storage-class-ordereddict", "allowed global collections.OrderedDict as the storage class",
          P(state_dict([("w", tensor(p=pid(storage_mod="collections", storage="OrderedDict")))])),
          "unknownStorageType")
    for nm, key in [("dotdot", "../../etc/passwd"), ("slash", "a/b"), ("dotdot-only", ".."),
                    ("absolute", "/etc/passwd")]:
        tcase("storage-key-%s" % nm, "storage key %r" % key, P(state_dict([("w", tensor(p=pid(key=key)))])),
              "unsafeStorageKey")
    tcase("pid-four-tuple", "persistent id ('storage', FloatStorage, '0', 'cpu')",
          P(state_dict([("w", tensor(p=["MARK", S("storage"), G("torch", "FloatStorage"), S("0"), S("cpu"),
                                         "TUPLE", "BINPERSID"]))])), "badPersistentID")
    tcase("pid-wrong-tag", "persistent id ('module', FloatStorage, '0', 'cpu', 4)",
          P(state_dict([("w", tensor(p=pid(tag="module")))])), "badPersistentID")
    tcase("pid-string", "persistent id is the string '0' (BINPERSID)",
          P(state_dict([("w", tensor(p=[S("0"), "BINPERSID"]))])), "badPersistentID")
    tcase("pid-text-persid", "protocol-0 PERSID '0'",
          P(state_dict([("w", tensor(p=[("PERSID", "0")]))])), "badPersistentID")
    tcase("pid-key-not-string", "persistent id whose key is the int 0",
          P(state_dict([("w", tensor(p=["MARK", S("storage"), G("torch", "FloatStorage"), I(0), S("cpu"), I(4),
                                         "TUPLE", "BINPERSID"]))])), "badPersistentID")
    tcase("storage-dtype-conflict", "key '0' referenced as FloatStorage and as DoubleStorage",
          P(state_dict([("w", tensor()), ("v", tensor(p=pid(storage="DoubleStorage", numel=2), size=(2,)))])),
          "storageMismatch")
    tcase("storage-numel-conflict", "key '0' referenced with numel 4 and numel 2",
          P(state_dict([("w", tensor()), ("v", tensor(p=pid(numel=2), size=(2,)))])), "storageMismatch")

    # ---------------------------------------------------------------- class 9: archives that lie
    good, lay = build_zip(torch_entries(base_pkl))

    def eocd_patch(buf, total=None, cd_size=None, cd_off=None):
        e = lay["eocd"]
        z = lay["z64eocd"]
        if total is not None:
            buf = patch(buf, e + 8, "<HH", min(total, 0xFFFF), min(total, 0xFFFF))
            buf = patch(buf, z + 24, "<QQ", total, total)
        if cd_size is not None:
            buf = patch(buf, e + 12, "<I", min(cd_size, U32))
            buf = patch(buf, z + 40, "<Q", cd_size)
        if cd_off is not None:
            buf = patch(buf, e + 16, "<I", min(cd_off, U32))
            buf = patch(buf, z + 48, "<Q", cd_off)
        return buf

    def z9(name, desc, data, code, entry=None, has_offset=False, **kw):
        add(name, 9, desc, data, code, entry=entry, has_offset=has_offset, **kw)

    z9("zip-truncated-half", "valid archive cut in half (no end record)", good[:len(good) // 2], "zipStructure")
    z9("zip-truncated-in-eocd", "valid archive missing the last 5 bytes of the end record", good[:-5],
       "zipStructure")
    z9("zip-truncated-in-cd", "valid archive cut in the middle of the central directory",
       good[:lay["cd"] + 20], "zipStructure")
    z9("zip-cd-offset-beyond", "central directory offset beyond the file",
       eocd_patch(good, cd_off=len(good) + 1000), "zipStructure")
    z9("zip-cd-size-beyond", "central directory size larger than the file",
       eocd_patch(good, cd_size=0x7FFF0000), "zipStructure")
    z9("zip-entry-count-mismatch", "end records claim 9 entries; the directory holds 4",
       eocd_patch(good, total=9), "zipStructure")
    z9("zip-cd-bad-signature", "first central directory record has a wrong signature",
       patch(good, lay["cd"], "<I", 0x02014B51), "zipStructure")
    z9("zip64-cd-offset-overflow", "Zip64 end record: directory offset 2^64-256 (end record fields = 0xFFFFFFFF)",
       patch(patch(good, lay["eocd"] + 12, "<II", U32, U32), lay["z64eocd"] + 48, "<Q", 2 ** 64 - 256),
       "zipStructure")
    z9("zip64-entry-count-overflow", "Zip64 end record: 2^63+4 entries",
       patch(patch(good, lay["eocd"] + 8, "<HH", 0xFFFF, 0xFFFF), lay["z64eocd"] + 24, "<QQ", 2 ** 63 + 4, 2 ** 63 + 4),
       "zipStructure")
    z9("zip64-cd-size-overflow", "Zip64 end record: directory size 2^64-16 (offset + size wraps)",
       patch(patch(good, lay["eocd"] + 12, "<I", U32), lay["z64eocd"] + 40, "<Q", 2 ** 64 - 16), "zipStructure")
    z9("zip64-locator-beyond", "Zip64 locator points past the end of the file",
       patch(good, lay["z64loc"] + 8, "<Q", 2 ** 40), "zipStructure")

    ents = torch_entries(base_pkl)
    ents[0].csize = ents[0].usize = 0x7FFFFFF0
    z9("zip-entry-size-beyond", "data.pkl's sizes (0x7FFFFFF0) reach past the end of the file",
       build_zip(ents)[0], "zipEntryOutOfBounds", entry=PKL)
    ents = torch_entries(base_pkl)
    ents[2].cd_offset = len(good) + 100
    z9("zip-local-offset-beyond", "data/0's local header offset is past the end of the file",
       build_zip(ents)[0], "zipEntryOutOfBounds", entry="archive/data/0")
    ents = torch_entries(base_pkl)
    ents[2].cd_offset = 2 ** 64 - 16
    z9("zip64-entry-offset-overflow", "data/0's Zip64 local header offset is 2^64-16",
       build_zip(ents)[0], "zipEntryOutOfBounds", entry="archive/data/0")
    ents = torch_entries(base_pkl)
    ents[2].local_extra_len = 0xFFFF
    z9("zip-local-extra-beyond", "data/0's local header extra length 65535 puts its data past the end",
       build_zip(ents)[0], "zipEntryOutOfBounds", entry="archive/data/0")

    # overlapping entries
    two = P(state_dict([("w", tensor()), ("v", tensor(p=pid(key="1")))]))
    inner_payload = floats([5.0, 6.0, 7.0, 8.0])
    inner_name = b"archive/data/1"
    inner_lh = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, DOS_TIME, DOS_DATE, zlib.crc32(inner_payload),
                           len(inner_payload), len(inner_payload), len(inner_name), 0) + inner_name
    outer = inner_lh + inner_payload
    outer += b"\x00" * ((-len(outer)) % 4)
    ents = [ZEntry("archive/data.pkl", P(state_dict([("w", tensor(p=pid(numel=len(outer) // 4), size=(4,))),
                                                     ("v", tensor(p=pid(key="1")))]))),
            ZEntry("archive/byteorder", b"little"), ZEntry("archive/data/0", outer)]
    data, zl = build_zip(ents + [ZEntry("archive/version", b"3\n")])
    # add a central record for data/1 that points at the local header inside data/0's data
    inner_off = zl["data"][b"archive/data/0"]
    rec = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 0x031E, 20, 0, 0, DOS_TIME, DOS_DATE,
                      zlib.crc32(inner_payload), len(inner_payload), len(inner_payload), len(inner_name), 0, 0, 0, 0,
                      0o100644 << 16, inner_off) + inner_name
    cd_end = zl["z64eocd"]
    data = data[:cd_end] + rec + data[cd_end:]
    zl2 = dict(zl)
    shift = len(rec)
    zl2["z64eocd"] += shift
    zl2["z64loc"] += shift
    zl2["eocd"] += shift
    data = patch(data, zl2["z64eocd"] + 24, "<QQQ", 5, 5, zl["cd_size"] + shift)
    data = patch(data, zl2["z64loc"] + 8, "<Q", zl2["z64eocd"])
    data = patch(data, zl2["eocd"] + 8, "<HHI", 5, 5, zl["cd_size"] + shift)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert z.read("archive/data/1") == inner_payload
    z9("zip-overlap-nested-entry", "data/1's local header and data lie inside data/0's data",
       data, "zipOverlappingEntries")

    # data/0's local header hidden inside data.pkl (in a BINBYTES payload)
    name0 = b"archive/data/0"
    lh0 = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, DOS_TIME, DOS_DATE, zlib.crc32(W4), 16, 16,
                      len(name0), 0) + name0 + W4
    host = P(state_dict([("w", tensor()), ("pad", [("BINBYTES", lh0)])]))
    ents = [ZEntry("archive/data.pkl", host), ZEntry("archive/byteorder", b"little"),
            ZEntry("archive/version", b"3\n")]
    data, zl = build_zip(ents)
    pkl_data = zl["data"][b"archive/data.pkl"]
    lh0_off = pkl_data + host.index(lh0)
    rec = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 0x031E, 20, 0, 0, DOS_TIME, DOS_DATE, zlib.crc32(W4), 16, 16,
                      len(name0), 0, 0, 0, 0, 0o100644 << 16, lh0_off) + name0
    cd_end = zl["z64eocd"]
    data = data[:cd_end] + rec + data[cd_end:]
    shift = len(rec)
    z64, loc, eo = zl["z64eocd"] + shift, zl["z64loc"] + shift, zl["eocd"] + shift
    data = patch(data, z64 + 24, "<QQQ", 4, 4, zl["cd_size"] + shift)
    data = patch(data, loc + 8, "<Q", z64)
    data = patch(data, eo + 8, "<HHI", 4, 4, zl["cd_size"] + shift)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert z.read("archive/data/0") == W4
    z9("zip-overlap-storage-inside-pickle", "data/0's local header and data lie inside data.pkl's data",
       data, "zipOverlappingEntries")

    # data/0's declared size extends over data/1's local header and data. The pickle's numel for '0'
    # depends on the layout, which depends on the pickle's length: iterate to a fixed point.
    s1 = {"0": W4, "1": floats([5, 6, 7, 8])}
    numel = 4
    for _ in range(8):
        pkl3 = P(state_dict([("w", tensor(p=pid(numel=numel), size=(4,))), ("v", tensor(p=pid(key="1")))]))
        data, zl = build_zip(torch_entries(pkl3, storages=s1))
        start0 = zl["data"][b"archive/data/0"]
        ext_len = zl["data"][b"archive/data/1"] + 16 - start0
        assert ext_len % 4 == 0
        if ext_len // 4 == numel:
            break
        numel = ext_len // 4
    else:
        raise AssertionError("no fixed point")
    crc = zlib.crc32(data[start0:start0 + ext_len])
    r = zl["cd_record"][b"archive/data/0"]
    data = patch(data, r + 16, "<III", crc, ext_len, ext_len)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert len(z.read("archive/data/0")) == ext_len and z.read("archive/data/1") == s1["1"]
    z9("zip-overlap-extended-size", "data/0's declared size extends over data/1's local header and data",
       data, "zipOverlappingEntries")

    # duplicates
    evil_pkl = P(state_dict([("w", tensor()), ("x", evil_call("os", "system"))]))
    z9("zip-duplicate-data-pkl", "two archive/data.pkl entries: benign first, malicious second",
       build_zip(torch_entries(base_pkl) + [ZEntry("archive/data.pkl", evil_pkl)])[0], "zipDuplicateEntry",
       entry=PKL)
    z9("zip-duplicate-storage", "two archive/data/0 entries with different contents",
       build_zip(torch_entries(base_pkl) + [ZEntry("archive/data/0", floats([9, 9, 9, 9]))])[0],
       "zipDuplicateEntry", entry="archive/data/0")
    z9("zip-duplicate-byteorder", "two archive/byteorder entries: 'little' then 'big'",
       build_zip(torch_entries(base_pkl) + [ZEntry("archive/byteorder", b"big")])[0], "zipDuplicateEntry",
       entry="archive/byteorder")

    # unsafe names
    for nm, prefix, desc in [("dotdot", "../../tmp/archive", "entries under '../../tmp/archive/'"),
                             ("absolute", "/archive", "entries under '/archive/' (absolute)"),
                             ("nul", "arch\x00ive", "entries under 'arch\\0ive/' (NUL in the name)"),
                             ("backslash", "..\\..\\archive", "entries under '..\\..\\archive/'")]:
        z9("zip-name-%s" % nm, desc, torch_zip(base_pkl, prefix=prefix), "zipUnsafeName")
    z9("zip-name-extra-dotdot-entry", "valid archive plus an unreferenced entry 'archive/../../../etc/cron.d/x'",
       torch_zip(base_pkl, extra=[ZEntry("archive/../../../etc/cron.d/x", b"* * * * * root id\n")]),
       "zipUnsafeName")

    # compression methods
    for nm, idx, method, ent in [("99", 0, 99, PKL), ("bzip2-on-storage", 2, 12, "archive/data/0"),
                                 ("lzma", 0, 14, PKL)]:
        ents = torch_entries(base_pkl)
        ents[idx].method = method
        ents[idx].payload = ents[idx].data
        z9("zip-compression-%s" % nm, "compression method %d on %s" % (method, ent), build_zip(ents)[0],
           "zipUnsupportedCompression", entry=ent)

    # inflation
    big_pkl = P(state_dict([("w", tensor()), ("pad", [("BINBYTES", b"\x00" * (1 << 20))])]))
    ents = torch_entries(big_pkl, pkl_method=8)
    ents[0].usize = 4 << 30
    z9("zip-inflate-declared-4gib", "deflated data.pkl declares 4 GiB uncompressed; inflates to 1 MiB",
       build_zip(ents)[0], "zipInflate", entry=PKL)
    ents = torch_entries(big_pkl, pkl_method=8)
    ents[0].usize = 1000
    z9("zip-inflate-declared-small", "deflated data.pkl declares 1000 bytes; inflates to 1 MiB",
       build_zip(ents)[0], "zipInflate", entry=PKL)
    ents = torch_entries(base_pkl, pkl_method=8)
    ents[0].payload = bytes([0xFF]) * 40
    z9("zip-inflate-garbage", "deflated data.pkl whose stream is garbage", build_zip(ents)[0], "zipInflate",
       entry=PKL)
    ents = torch_entries(base_pkl, pkl_method=8)
    ents[0].payload = deflate(base_pkl)[:-4]
    z9("zip-inflate-cut-stream", "deflated data.pkl with the end of its stream cut", build_zip(ents)[0],
       "zipInflate", entry=PKL)
    zeros = asm([("PROTO", 2)]) + b"\x00" * (48 << 20)
    ents = torch_entries(zeros, pkl_method=8)
    z9("zip-inflate-48mib-zeros", "deflated data.pkl honestly declaring 48 MiB (of NUL opcodes)",
       build_zip(ents)[0], None)

    # missing entries
    z9("zip-no-data-pkl", "archive without data.pkl",
       build_zip([ZEntry("archive/byteorder", b"little"), ZEntry("archive/data/0", W4),
                  ZEntry("archive/version", b"3\n")])[0], "missingEntry")
    z9("zip-empty-archive", "an empty zip archive (end record only)", build_zip([], zip64_end=False)[0],
       "missingEntry")
    z9("zip-data-pkl-renamed", "data.pkl renamed data.pkl.bak",
       build_zip([ZEntry("archive/data.pkl.bak", base_pkl), ZEntry("archive/byteorder", b"little"),
                  ZEntry("archive/data/0", W4)])[0], "missingEntry")

    # ---------------------------------------------------------------- class 10: legacy stream
    def l10(name, desc, data, code, entry=None, key=None, has_offset=False, **kw):
        add(name, 10, desc, data, code, entry=entry, key=key, has_offset=has_offset, **kw)

    l10("legacy-magic-other", "LONG1 magic 0x1950a86a20f9469cfc6d (last digit off by one)",
        legacy_stream(legacy_main, magic=P([("LONG1", LEGACY_MAGIC + 1)])), "legacyMagicMismatch")
    l10("legacy-magic-zero", "80 02 8a 0a followed by ten zero bytes",
        legacy_stream(legacy_main, magic=asm([("PROTO", 2), ("RAW", b"\x8a\x0a" + b"\x00" * 10), "STOP"])),
        "legacyMagicMismatch")
    l10("legacy-magic-top-byte", "magic with its most significant byte changed (0x19 -> 0x18)",
        legacy_stream(legacy_main, magic=P([("LONG1", LEGACY_MAGIC - (1 << 72))])), "legacyMagicMismatch")
    l10("legacy-protocol-1000", "protocol version 1000", legacy_stream(legacy_main, version=1000),
        "legacyProtocolVersion")
    l10("legacy-protocol-negative", "protocol version -1001", legacy_stream(legacy_main, version=-1001),
        "legacyProtocolVersion")
    l10("legacy-protocol-huge", "protocol version 2^62", legacy_stream(legacy_main, version=2 ** 62),
        "legacyProtocolVersion")
    l10("legacy-storage-negative", "storage '0' declares -1 elements",
        legacy_stream(legacy_main, storages={"0": (-1, W4)}), "legacyStorageSize", key="0", located=True)
    l10("legacy-storage-2-62", "storage '0' declares 2^62 float elements (bytes overflow Int64)",
        legacy_stream(legacy_main, storages={"0": (2 ** 62, W4)}), "legacyStorageSize", key="0", located=True)
    l10("legacy-storage-beyond-end", "storage '0' declares 1000 elements; 4 remain",
        legacy_stream(legacy_main, storages={"0": (1000, W4)}), "legacyStorageSize", key="0", located=True)
    dbl_main = P(state_dict([("w", tensor(p=pid(storage="DoubleStorage", numel=2, view=["NONE"]), size=(2,)))]))
    l10("legacy-storage-double-overflow", "DoubleStorage '0' declares 2^61+1 elements (x8 overflows)",
        legacy_stream(dbl_main, storages={"0": (2 ** 61 + 1, W4)}), "legacyStorageSize", key="0", located=True)
    l10("legacy-storage-count-truncated", "the 8-byte element count of storage '0' has 3 bytes",
        legacy_stream(legacy_main, storages={"0": (4, b"")})[:-5], None)
    two_main = P(state_dict([("w", legacy_tensor()), ("v", legacy_tensor(key="1"))]))
    l10("legacy-storage-keys-missing", "main pickle references storage '1'; the key list holds only '0'",
        legacy_stream(two_main), "legacyStorageKeys")
    l10("legacy-storage-keys-unreferenced", "key list and storages hold '0' and '1'; the pickle uses only '0'",
        legacy_stream(legacy_main, keys=("0", "1"), storages={"0": (4, W4), "1": (4, W4)}), "legacyStorageKeys")
    l10("legacy-evil-main", "os.system in the main pickle",
        legacy_stream(P(state_dict([("w", legacy_tensor()), ("x", evil_call("os", "system"))]))),
        "disallowedGlobal", entry="pickle:main", key="os.system", has_offset=True, opcode=OP["GLOBAL"])
    l10("legacy-unknown-opcode-main", "opcode 0xff in the main pickle",
        legacy_stream(P(state_dict([("w", legacy_tensor()), ("x", [("RAW", b"\xff")])]))), "unknownOpcode",
        entry="pickle:main", has_offset=True, opcode=0xFF)
    l10("legacy-evil-sys-info", "os.system in the sys_info pickle",
        legacy_stream(legacy_main, sys_info=P(evil_call("os", "system"))), "disallowedGlobal", key="os.system",
        has_offset=True, opcode=OP["GLOBAL"])
    l10("legacy-evil-key-list", "os.system in the storage key list pickle",
        legacy_stream(legacy_main, key_list=P(evil_call("os", "system"))), "disallowedGlobal", key="os.system",
        has_offset=True, opcode=OP["GLOBAL"])
    l10("legacy-truncated-after-main", "stream ends right after the main pickle",
        legacy_stream(legacy_main)[: -(len(P(["EMPTY_LIST", "MARK", S("0"), "APPENDS"])) + 8 + 16)], None)
    l10("legacy-view-metadata-out-of-bounds", "6-tuple persistent id whose view (key, 100, 50) exceeds the storage",
        legacy_stream(P(state_dict([("w", tensor(p=pid(numel=4, view=tup(S("v"), I(100), I(50)))))]))), None)

    chain = b""
    h = b"torchport hostile corpus"
    while len(chain) < 4096:
        h = hashlib.sha256(h).digest()
        chain += h
    l10("unrecognized-random", "4 KiB of pseudo-random bytes", b"\x13\x37" + chain[2:], "unrecognizedFormat")
    l10("unrecognized-empty", "an empty file", b"", "unrecognizedFormat")
    l10("unrecognized-git-lfs-pointer", "a Git LFS pointer file instead of the checkpoint",
        b"version https://git-lfs.github.com/spec/v1\n"
        b"oid sha256:4b6b8ed1b9d1b1e4d5e2f3a0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0\nsize 102530333\n",
        "unrecognizedFormat")
    l10("unrecognized-safetensors", "a safetensors file given to the checkpoint reader",
        struct.pack("<Q", 64) + b'{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}'.ljust(64) + W4,
        "unrecognizedFormat")


# --------------------------------------------------------------------------------------------------
# Class 11: where torch.load would read other bytes than Torchport (the red team's findings)
# --------------------------------------------------------------------------------------------------

def evil_body(cmd="touch /tmp/torchport-red-team"):
    return [G("os", "system"), S(cmd), "TUPLE1", "REDUCE"]


def tar_header(name, size):
    """An old V7 tar header (no 'ustar' magic), as Python's tarfile accepts it."""
    h = bytearray(512)
    h[0:len(name)] = name
    h[100:108] = b"0000644\0"
    h[108:116] = b"0000000\0"
    h[116:124] = b"0000000\0"
    h[124:136] = b"%011o\0" % size
    h[136:148] = b"00000000000\0"
    h[148:156] = b" " * 8
    h[156:157] = b"0"
    h[148:156] = b"%06o\0 " % (sum(h))
    return bytes(h)


def red_team_cases():
    base = P(state_dict([("w", tensor())]))
    evil = P(evil_body())

    # 1. data.pkl (decoy) beside DATA.PKL (evil): miniz finds names case-insensitively.
    ents = [ZEntry("archive/DATA.PKL", evil)] + torch_entries(base)
    add("redteam-case-twin-pkl", 11, "archive/DATA.PKL (evil) before archive/data.pkl (decoy): torch's reader "
        "finds entries case-insensitively and loads the evil one", build_zip(ents)[0], "zipAmbiguous",
        entry="archive/DATA.PKL", scan="dangerous")

    # 11. A case twin of a storage: torch would read zeros for 'w', Torchport the real weights.
    ents = torch_entries(base)
    ents.insert(2, ZEntry("archive/DATA/0", b"\0" * 16))
    add("redteam-case-twin-storage", 11, "archive/DATA/0 (zeros) before archive/data/0: the two readers "
        "would load different weights", build_zip(ents)[0], "zipAmbiguous", entry="archive/DATA/0",
        scan="ambiguous")

    # 2. Two end records: the benign archive, then an evil directory whose end record claims a
    # 0xFFFF-byte comment running past the end (miniz takes it; a strict reader skips it).
    benign = torch_zip(base)
    both, layout = build_zip(torch_entries(evil), zip64_end=False, start=benign)
    both = patch(both, layout["eocd"] + 20, "<H", 0xFFFF)
    add("redteam-two-eocd", 11, "a benign archive, then an evil one whose end record's comment runs past "
        "the end of the file", both, "zipAmbiguous", has_offset=True, scan="dangerous")

    # 3. The legacy magic number in forms CPython's INT and LONG accept (int(text, 0)).
    main_evil = P(state_dict([("w", legacy_tensor())]) + evil_body() + ["POP"])
    for nm, op, text in [("hex-int", "INT", b"0x1950a86a20f9469cfc6c"),
                         ("octal-int", "INT", b"0o%o" % LEGACY_MAGIC),
                         ("underscored-long", "LONG", ("{:_}".format(LEGACY_MAGIC) + "L").encode()),
                         ("binary-long", "LONG", b" 0b" + bin(LEGACY_MAGIC)[2:].encode() + b"L")]:
        magic = bytes([OP["PROTO"], 2, OP[op]]) + text + b"\n."
        assert pickle.loads(magic) == LEGACY_MAGIC, nm
        add("redteam-legacy-magic-" + nm, 11, "legacy stream whose magic number is %s %r (CPython reads it as "
            "the magic): the main pickle runs os.system" % (op, text.decode()),
            legacy_stream(main_evil, magic=magic), None, scan="dangerous")

    # ... and as LONG1 straddling the end of a FRAME that is too short for its operand (frames
    # are only a buffering hint to CPython's C unpickler).
    long1 = asm([("LONG1", LEGACY_MAGIC)])
    magic = asm([("PROTO", 4), ("FRAME", 3)]) + long1 + b"."
    assert pickle.loads(magic) == LEGACY_MAGIC
    add("redteam-legacy-magic-short-frame", 11, "legacy magic as LONG1 straddling a 3-byte FRAME",
        legacy_stream(main_evil, magic=magic), None, scan="dangerous")

    # 4. A FRAME running past the magic pickle's STOP, with decoy sections inside it: CPython
    # read()s a frame larger than its buffer in one piece, so torch resumes after the frame.
    main_good = P(state_dict([("w", legacy_tensor())]))
    decoys = legacy_stream(main_good)[len(P([("LONG1", LEGACY_MAGIC)])):]
    decoys = decoys[:decoys.index(P(["EMPTY_LIST", "MARK", S("0"), "APPENDS"]))]  # protocol, sys_info, main
    inner = long1 + b"." + decoys + P(["EMPTY_LIST", "MARK", S("0"), "APPENDS"])
    inner += b"\0" * (20000 - len(inner))
    magic = asm([("PROTO", 4), ("FRAME", len(inner))]) + inner
    assert pickle.loads(magic) == LEGACY_MAGIC
    add("redteam-legacy-big-frame", 11, "a 20 000-byte FRAME around the magic pickle holds decoy sections; "
        "the sections after the frame run os.system", legacy_stream(main_evil, magic=magic), None,
        scan="dangerous")

    # 5. An old V7 tar (no 'ustar' magic) whose first member's name is a harmless pickle: torch
    # tries tarfile first and unpickles the 'storages' member.
    harmless = P(I(7))
    tar = tar_header(harmless, 0)
    tar += tar_header(b"storages", len(evil)) + evil + b"\0" * ((-len(evil)) % 512)
    tar += b"\0" * 1024
    import tarfile
    with tarfile.open(fileobj=io.BytesIO(tar), mode="r:") as t:
        assert t.getmember("storages").size == len(evil)
    add("redteam-v7-tar", 11, "a V7 tar (no ustar magic): first member named by a harmless pickle, "
        "'storages' holds os.system", tar, None, scan="dangerous")

    # 6. Looks like safetensors (8 plausible length bytes, then '{') and is a pickle from byte 0.
    body = bytes([OP["BINUNICODE"], 9, 0, 0, 0]) + b'\0\0\0{"a":1' + bytes([OP["POP"]])
    body += asm([evil_body(), "STOP"])
    n = struct.unpack("<Q", body[:8])[0]
    data = body + b" " * (n + 8 - len(body))
    assert data[8:9] == b"{" and n <= len(data) - 8
    add("redteam-safetensors-lookalike", 11, "a plausible safetensors length and '{', and a pickle from byte 0 "
        "that runs os.system", data, None, scan="dangerous")

    # 8. BUILD on the argparse.Namespace class itself sets dump_patches and __name__ (a legacy
    # ('module', cls, source, text) persistent id then makes torch write <__name__>.patch).
    patcher = [G("argparse", "Namespace"), tup(["NONE"], plain_dict([("dump_patches", ["NEWTRUE"]),
                                                                   ("__name__", S("../../.bashrc"))])),
               "BUILD", "POP"]
    main_patch = P(patcher + state_dict([("w", legacy_tensor())]))
    add("redteam-namespace-dump-patches", 11, "BUILD on the argparse.Namespace class (dump_patches, __name__)",
        legacy_stream(main_patch), None, scan="dangerous")

    # 9. __torch__ globals in a plain zip: torch.load imports a Python module named __torch__.
    tmod = P(state_dict([("w", tensor())]) + [G("__torch__", "Payload"), "EMPTY_TUPLE", "REDUCE", "POP"])
    add("redteam-torch-module-plain-zip", 11, "a plain zip (no constants.pkl) referencing __torch__.Payload",
        torch_zip(tmod), None, scan="dangerous")

    # 10. A global whose name would redraw the terminal.
    esc = P([G("os", "system\x1b[2K\rSAFE"), S("id"), "TUPLE1", "REDUCE"])
    add("redteam-escape-in-name", 11, "a global name holding terminal escape sequences", torch_zip(esc),
        "disallowedGlobal", has_offset=True, scan="dangerous")

    # 12. Zero-size tensors under ResNet names, conv2 [0, 1, 3, 3] (no groups): not a ResNet.
    zero = pid(key="0", numel=0)
    items = [("conv1.weight", tensor(p=zero, size=(4, 3, 0, 0), stride=(0, 0, 0, 0)))]
    for stage in range(1, 5):
        for conv, shape in [("conv1", (0, 4, 1, 1)), ("conv2", (0, 1, 3, 3)), ("conv3", (0, 1, 1, 1))]:
            items.append(("layer%d.0.%s.weight" % (stage, conv), tensor(p=zero, size=shape, stride=(9, 9, 3, 1))))
    add("redteam-zero-size-groups", 11, "zero-size tensors under ResNet names, conv2 [0, 1, 3, 3]",
        torch_zip(P(state_dict(items)), storages={"0": b""}), None, expect_success=True,
        expect_tensor_count=len(items), scan="safe")


def red_team_cost_cases():
    """Item 16 of the red team's list: work a small file could drive without paying for it."""
    # _codecs.encode of one memoised 1 MiB string, 3,000 times (each makes new bytes).
    big = "a" * (1 << 20)
    body = [("BINUNICODE", big), "MEMOIZE", "POP", "EMPTY_LIST", "MARK"]
    for _ in range(3000):
        body += [G("_codecs", "encode"), ("BINGET", 0), S("latin1"), "TUPLE2", "REDUCE"]
    body += ["APPENDS"]
    pkl = asm([("PROTO", 4), body, "STOP"])
    data = build_zip(torch_entries(pkl, pkl_method=8))[0]
    add("redteam-codecs-encode-replay", 11, "_codecs.encode of one memoised 1 MiB string, 3,000 times "
        "(a deflated data.pkl)", data, "limitExceeded", entry=PKL, has_offset=True, scan="safe")

    # SETITEM with an 8 MiB key, 2,000 times.
    key = "k" * (8 << 20)
    body = ["EMPTY_DICT", ("BINUNICODE", key), "MEMOIZE", "POP"]
    for i in range(2000):
        body += [("BINGET", 0), I(i), "SETITEM"]
    pkl = asm([("PROTO", 4), body, "STOP"])
    data = build_zip(torch_entries(pkl, pkl_method=8))[0]
    add("redteam-setitem-long-key", 11, "SETITEM with one 8 MiB key, 2,000 times (a deflated data.pkl)", data,
        "limitExceeded", entry=PKL, has_offset=True, scan="safe")

    # A protocol-0 LONG of 9,999 digits: CPython refuses more than 4,300.
    pkl = b"L" + b"9" * 9999 + b"L\n."
    add("redteam-long-9999-digits", 11, "a LONG of 9,999 decimal digits (CPython's limit is 4,300)",
        torch_zip(pkl), "malformedOperand", entry=PKL, has_offset=True, scan="safe")

    # 3,000 dicts keyed by one memoised 4,096-byte integer: each key named when the dicts are walked.
    body = [("LONG4", (1 << (8 * 4096 - 2)) - 12345), "MEMOIZE", "POP", "EMPTY_LIST", "MARK"]
    for _ in range(3000):
        body += ["EMPTY_DICT", ("BINGET", 0), "NONE", "SETITEM"]
    body += ["APPENDS"]
    items = [("w", tensor()), ("keys", body)]
    pkl = asm([("PROTO", 4), state_dict(items), "STOP"])
    add("redteam-big-int-keys", 11, "3,000 dicts keyed by one memoised 4,096-byte integer", torch_zip(pkl), None,
        expect_success=True, expect_tensors=["w"], scan="safe")

    # Many candidate model roots: 20,000 stems '<i>.conv1.weight' of one shared storage.
    p0 = pid(key="0", numel=0)
    items = [("m%d.conv1.weight" % i, tensor(p=p0, size=(1, 3, 0, 0), stride=(0, 0, 0, 0))) for i in range(20000)]
    pkl = asm([("PROTO", 4), state_dict(items), "STOP"])
    data = build_zip(torch_entries(pkl, storages={"0": b""}, pkl_method=8))[0]
    add("redteam-many-roots", 11, "20,000 stems 'm<i>.conv1.weight': as many candidate model roots", data, None,
        expect_success=True, expect_tensor_count=20000, scan="safe")


def basic_resnet_shapes(widths=(8, 16, 32, 48), blocks=(2, 2, 2, 2), classes=10):
    """(name, shape) of every tensor of a torchvision-style ResNet of BasicBlocks."""
    out = [("conv1.weight", (widths[0], 3, 7, 7))]
    def bn(p, c):
        return [(p + ".weight", (c,)), (p + ".bias", (c,)), (p + ".running_mean", (c,)), (p + ".running_var", (c,))]
    out += bn("bn1", widths[0])
    cin = widths[0]
    for s, (w, n) in enumerate(zip(widths, blocks)):
        for b in range(n):
            p = "layer%d.%d" % (s + 1, b)
            out += [(p + ".conv1.weight", (w, cin, 3, 3))] + bn(p + ".bn1", w)
            out += [(p + ".conv2.weight", (w, w, 3, 3))] + bn(p + ".bn2", w)
            if b == 0 and cin != w:
                out += [(p + ".downsample.0.weight", (w, cin, 1, 1))] + bn(p + ".downsample.1", w)
            cin = w
    out += [("fc.weight", (classes, cin)), ("fc.bias", (classes,))]
    return out


def red_team_expansion_cases():
    """Item 14: a ResNet whose every tensor is a zero-stride view of one float: converting it writes
    every element (a 2,000,000-class head: 384 MB from a few KB)."""
    one = pid(key="0", numel=1)
    items = [(n, tensor(p=one, size=shape, stride=tuple(0 for _ in shape)))
             for n, shape in basic_resnet_shapes(classes=2_000_000)]
    add("redteam-zero-stride-resnet", 11, "a ResNet of zero-stride views of one float, with a 2,000,000-class "
        "head: 384 MB to write", torch_zip(P(state_dict(items)), storages={"0": floats([0.5])}), None,
        expect_success=True, expect_tensor_count=len(items), scan="safe")


def main():
    build_cases()
    red_team_cases()
    red_team_cost_cases()
    red_team_expansion_cases()
    if os.path.isdir(CASES_DIR):
        shutil.rmtree(CASES_DIR)
    os.makedirs(CASES_DIR)
    manifest = []
    for c in CASES:
        rel = "cases/%s.pth" % c["name"]
        with open(os.path.join(HERE, rel), "wb") as f:
            f.write(c["data"])
        manifest.append({
            "file": rel, "class": c["cls"], "description": c["description"], "code": c["code"],
            "entry": c["entry"], "key": c["key"], "opcode": c["opcode"], "has_offset": c["has_offset"],
            "located": c["located"] or c["has_offset"], "expect_success": c["expect_success"],
            "expect_tensors": c["expect_tensors"], "expect_tensor_count": c["expect_tensor_count"],
            "scan": c["scan"],
        })
    with open(os.path.join(HERE, "manifest.json"), "w") as f:
        json.dump(manifest, f, sort_keys=True, indent=1)
        f.write("\n")
    counts = {}
    for c in CASES:
        counts[c["cls"]] = counts.get(c["cls"], 0) + 1
    print("%d cases: %s" % (len(CASES), ", ".join("class %d: %d" % kv for kv in sorted(counts.items()))))
    for cls in range(1, 11):
        assert counts.get(cls, 0) >= 3, cls


if __name__ == "__main__":
    sys.exit(main())
