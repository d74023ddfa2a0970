//! Reader of legacy PyTorch checkpoints, the non-zip format that `torch.save` wrote before
//! PyTorch 1.6 (and still writes with `_use_new_zipfile_serialization=False`).
//!
//! Such a file is a run of pickles followed by raw tensor storages:
//!
//! 1. a pickle of the magic number `0x1950a86a20f9469cfc6c`,
//! 2. a pickle of the protocol version (1001),
//! 3. a pickle of a system-information dict (`little_endian`, `type_sizes`),
//! 4. the pickled object itself, here a state dict whose tensors are rebuilt by
//!    `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)` and whose storages are
//!    persistent ids `('storage', torch.FloatStorage, key, location, numel, view_metadata)`,
//! 5. a pickle of the list of storage keys,
//! 6. for each key in that list, the element count as a little-endian `u64` followed by the raw
//!    little-endian elements.
//!
//! The pickle machine here runs only the binary opcodes of protocols 1 and 2 (and a few of
//! protocols 3 and 4) that state dicts use. It never imports or calls anything. A known global
//! such as `collections.OrderedDict` is interpreted, and any other call is kept as an opaque
//! value. Limits:
//! only little-endian files, tensors come back on the CPU, and Char (`i8`) and complex storages
//! are rejected. Zip-based `.pth` files are read by `candle_nn::VarBuilder::from_pth` instead.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

/// The magic number that opens a legacy PyTorch file, as a pickled integer.
const MAGIC_NUMBER: i128 = 0x1950a86a20f9469cfc6c;
/// The only protocol version written by legacy `torch.save`.
const PROTOCOL_VERSION: i128 = 1001;

/// Errors from reading a legacy PyTorch checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum PthError {
    #[error("failed to read the PyTorch checkpoint {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error(
        "the file is a zip archive, the PyTorch format since 1.6, not the legacy format; \
         read it with candle_nn::VarBuilder::from_pth"
    )]
    ZipFormat,

    #[error(
        "the file does not start with the legacy PyTorch magic number 0x1950a86a20f9469cfc6c \
         (found {found}); expected a checkpoint written by torch.save before PyTorch 1.6"
    )]
    BadMagic { found: String },

    #[error(
        "unsupported legacy PyTorch protocol version {found}, expected {PROTOCOL_VERSION}; \
         re-save the checkpoint with a current PyTorch"
    )]
    BadProtocolVersion { found: String },

    #[error(
        "the checkpoint was written on a big-endian machine, but only little-endian checkpoints \
         are supported; re-save it on a little-endian machine"
    )]
    BigEndian,

    #[error(
        "the checkpoint is truncated: {what} needs {needed} bytes at offset {offset}, but only \
         {available} remain; the download or copy was probably cut short, so fetch the file again"
    )]
    Truncated {
        what: &'static str,
        offset: usize,
        needed: u64,
        available: usize,
    },

    #[error(
        "invalid pickle at byte {offset}: {message}; the checkpoint is damaged or not a state dict"
    )]
    Pickle { offset: usize, message: String },

    #[error(
        "tensor {name:?} uses storage type torch.{storage_type}, which is not supported; \
         expected one of Float, Double, Half, BFloat16, Long, Int, Short, Byte or Bool storage, \
         so convert the tensor (for example with .float()) and re-save the checkpoint"
    )]
    UnsupportedStorage { name: String, storage_type: String },

    #[error(
        "storage {key:?} is referenced by the state dict but missing from the storage list at the \
         end of the file; the checkpoint is damaged, so fetch it again"
    )]
    MissingStorage { key: String },

    #[error(
        "storage {key:?} holds {found} elements in the file, but the state dict declares \
         {expected}; the checkpoint is damaged, so fetch it again"
    )]
    StorageSize {
        key: String,
        expected: u64,
        found: u64,
    },

    #[error(
        "tensor {name:?} with offset {offset}, size {size:?} and stride {stride:?} reaches past \
         the end of its storage of {storage_numel} elements; the checkpoint is damaged, so fetch \
         it again"
    )]
    ViewOutOfBounds {
        name: String,
        offset: u64,
        size: Vec<u64>,
        stride: Vec<u64>,
        storage_numel: u64,
    },

    #[error(
        "the checkpoint holds {found}, not a dict of tensors; expected a state dict as saved by \
         torch.save(model.state_dict(), path)"
    )]
    NotAStateDict { found: String },

    #[error("failed to build tensor {name:?}: {source}")]
    Tensor {
        name: String,
        source: candle_core::Error,
    },
}

/// Reads a legacy (pre-1.6, non-zip) PyTorch state dict into named CPU tensors, in file order.
///
/// Views are honoured: each tensor is gathered from its storage with its offset, size and stride,
/// and comes back contiguous. Values of the state dict that are not tensors are skipped.
pub fn read_legacy_state_dict(path: &Path) -> Result<Vec<(String, Tensor)>, PthError> {
    let bytes = std::fs::read(path).map_err(|source| PthError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_legacy_state_dict(&bytes)
}

/// Parses the bytes of a legacy PyTorch state dict; see [`read_legacy_state_dict`].
pub fn parse_legacy_state_dict(bytes: &[u8]) -> Result<Vec<(String, Tensor)>, PthError> {
    if bytes.starts_with(b"PK\x03\x04") {
        return Err(PthError::ZipFormat);
    }
    let mut reader = Reader { bytes, pos: 0 };

    let magic = run_pickle(&mut reader)?;
    if !matches!(magic, Value::Int(MAGIC_NUMBER)) {
        return Err(PthError::BadMagic {
            found: magic.describe(),
        });
    }
    let protocol = run_pickle(&mut reader)?;
    if !matches!(protocol, Value::Int(PROTOCOL_VERSION)) {
        return Err(PthError::BadProtocolVersion {
            found: protocol.describe(),
        });
    }
    let sys_info = run_pickle(&mut reader)?;
    if let Some(Value::Bool(false)) = sys_info.dict_get("little_endian") {
        return Err(PthError::BigEndian);
    }

    let root = run_pickle(&mut reader)?;
    let entries = state_dict_tensors(root)?;
    let storage_keys = run_pickle(&mut reader)?;
    let storages = read_storages(&mut reader, &storage_keys, &entries)?;

    let mut tensors: Vec<(String, Tensor)> = Vec::with_capacity(entries.len());
    let mut index_of_name: HashMap<String, usize> = HashMap::new();
    for (name, tensor) in entries {
        let built = build_tensor(&name, &tensor, &storages)?;
        // A repeated key replaces the earlier value, as assigning into a Python dict does.
        match index_of_name.get(&name) {
            Some(&index) => tensors[index].1 = built,
            None => {
                index_of_name.insert(name.clone(), tensors.len());
                tensors.push((name, built));
            }
        }
    }
    Ok(tensors)
}

/// A storage reference from a persistent id: the root storage key, its declared element count,
/// and the element window that a view storage covers.
#[derive(Clone, Debug, PartialEq)]
struct StorageRef {
    dtype: DType,
    key: String,
    root_numel: u64,
    view_offset: u64,
}

/// A tensor as `_rebuild_tensor_v2` describes it; offset and stride count elements.
#[derive(Clone, Debug, PartialEq)]
struct TensorRef {
    storage: StorageRef,
    offset: u64,
    size: Vec<u64>,
    stride: Vec<u64>,
}

/// A value on the pickle stack. Lists and dicts are stored by value, so a container changed after
/// it was memoised is not seen through the memo.
/// NOTE: that differs from Python, but the state dicts written by `torch.save` do not rely on it.
#[derive(Clone, Debug, PartialEq)]
enum Value {
    None,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    Global {
        module: String,
        name: String,
    },
    Storage(Result<StorageRef, String>),
    Tensor(TensorRef),
    /// The result of a call that is not interpreted, kept so that the pickle still runs.
    Opaque(String),
}

impl Value {
    /// Returns a short description for error messages.
    fn describe(&self) -> String {
        match self {
            Value::None => "None".into(),
            Value::Bool(b) => format!("bool {b}"),
            Value::Int(i) => format!("int {i:#x}"),
            Value::Float(f) => format!("float {f}"),
            Value::Str(s) => format!("string {s:?}"),
            Value::Bytes(b) => format!("{} bytes", b.len()),
            Value::Tuple(v) => format!("a tuple of {}", v.len()),
            Value::List(v) => format!("a list of {}", v.len()),
            Value::Dict(v) => format!("a dict of {} entries", v.len()),
            Value::Global { module, name } => format!("global {module}.{name}"),
            Value::Storage(_) => "a storage".into(),
            Value::Tensor(_) => "a tensor".into(),
            Value::Opaque(what) => format!("an object built by {what}"),
        }
    }

    fn dict_get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(entries) => entries
                .iter()
                .rev()
                .find(|(k, _)| matches!(k, Value::Str(s) if s == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

/// A bounds-checked cursor over the file bytes.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// Takes `n` bytes, checking `n` against the bytes left before anything is allocated.
    fn take(&mut self, n: u64, what: &'static str) -> Result<&'a [u8], PthError> {
        if n > self.remaining() as u64 {
            return Err(PthError::Truncated {
                what,
                offset: self.pos,
                needed: n,
                available: self.remaining(),
            });
        }
        let start = self.pos;
        self.pos += n as usize;
        Ok(&self.bytes[start..self.pos])
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, PthError> {
        Ok(self.take(1, what)?[0])
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], PthError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N as u64, what)?);
        Ok(out)
    }

    fn line(&mut self, what: &'static str) -> Result<&'a str, PthError> {
        let rest = &self.bytes[self.pos..];
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            return Err(PthError::Truncated {
                what,
                offset: self.pos,
                needed: rest.len() as u64 + 1,
                available: rest.len(),
            });
        };
        let offset = self.pos;
        self.pos += end + 1;
        std::str::from_utf8(&rest[..end]).map_err(|_| PthError::Pickle {
            offset,
            message: format!("{what} is not valid UTF-8"),
        })
    }
}

/// The pickle machine: a value stack, the positions of MARKs, and the memo.
struct Machine {
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
    offset: usize,
}

impl Machine {
    fn error(&self, message: impl Into<String>) -> PthError {
        PthError::Pickle {
            offset: self.offset,
            message: message.into(),
        }
    }

    fn pop(&mut self) -> Result<Value, PthError> {
        self.stack
            .pop()
            .ok_or_else(|| self.error("the stack is empty"))
    }

    fn top(&mut self) -> Result<&mut Value, PthError> {
        let offset = self.offset;
        self.stack.last_mut().ok_or(PthError::Pickle {
            offset,
            message: "the stack is empty".into(),
        })
    }

    /// Pops everything above the last MARK, and the MARK itself.
    fn pop_mark(&mut self) -> Result<Vec<Value>, PthError> {
        let mark = self
            .marks
            .pop()
            .ok_or_else(|| self.error("no MARK to pop to"))?;
        if mark > self.stack.len() {
            return Err(self.error("a MARK points above the stack"));
        }
        Ok(self.stack.split_off(mark))
    }

    fn memo_get(&self, index: u32) -> Result<Value, PthError> {
        self.memo
            .get(&index)
            .cloned()
            .ok_or_else(|| self.error(format!("memo entry {index} was never stored")))
    }

    fn memo_put(&mut self, index: u32) -> Result<(), PthError> {
        let value = self
            .stack
            .last()
            .cloned()
            .ok_or_else(|| self.error("the stack is empty"))?;
        self.memo.insert(index, value);
        Ok(())
    }
}

/// Runs one pickle from the reader's position up to and including its STOP opcode.
fn run_pickle(reader: &mut Reader) -> Result<Value, PthError> {
    let mut vm = Machine {
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        offset: reader.pos,
    };
    loop {
        vm.offset = reader.pos;
        let opcode = reader.u8("a pickle opcode")?;
        match opcode {
            // PROTO
            0x80 => {
                reader.u8("the PROTO argument")?;
            }
            // FRAME (protocol 4): the frame length is only a read-ahead hint.
            0x95 => {
                reader.array::<8>("the FRAME length")?;
            }
            // STOP
            b'.' => return vm.pop(),
            // MARK
            b'(' => vm.marks.push(vm.stack.len()),
            b'}' => vm.stack.push(Value::Dict(Vec::new())),
            b']' => vm.stack.push(Value::List(Vec::new())),
            b')' => vm.stack.push(Value::Tuple(Vec::new())),
            // TUPLE
            b't' => {
                let items = vm.pop_mark()?;
                vm.stack.push(Value::Tuple(items));
            }
            // TUPLE1, TUPLE2, TUPLE3
            0x85..=0x87 => {
                let n = usize::from(opcode - 0x84);
                if vm.stack.len() < n {
                    return Err(vm.error(format!("TUPLE{n} needs {n} values on the stack")));
                }
                let items = vm.stack.split_off(vm.stack.len() - n);
                vm.stack.push(Value::Tuple(items));
            }
            // LIST
            b'l' => {
                let items = vm.pop_mark()?;
                vm.stack.push(Value::List(items));
            }
            // DICT
            b'd' => {
                let items = vm.pop_mark()?;
                let dict = pairs(&vm, items)?;
                vm.stack.push(Value::Dict(dict));
            }
            // BINUNICODE
            b'X' => {
                let len = u32::from_le_bytes(reader.array("a BINUNICODE length")?);
                let text = utf8(&vm, reader.take(u64::from(len), "a BINUNICODE string")?)?;
                vm.stack.push(Value::Str(text));
            }
            // SHORT_BINUNICODE (protocol 4)
            0x8c => {
                let len = reader.u8("a SHORT_BINUNICODE length")?;
                let text = utf8(
                    &vm,
                    reader.take(u64::from(len), "a SHORT_BINUNICODE string")?,
                )?;
                vm.stack.push(Value::Str(text));
            }
            // BINSTRING and SHORT_BINSTRING: Python 2 byte strings, read as Latin-1.
            b'T' | b'U' => {
                let len = if opcode == b'T' {
                    u64::from(u32::from_le_bytes(reader.array("a BINSTRING length")?))
                } else {
                    u64::from(reader.u8("a SHORT_BINSTRING length")?)
                };
                let raw = reader.take(len, "a BINSTRING string")?;
                vm.stack
                    .push(Value::Str(raw.iter().map(|&b| char::from(b)).collect()));
            }
            // BINBYTES and SHORT_BINBYTES (protocol 3)
            b'B' | b'C' => {
                let len = if opcode == b'B' {
                    u64::from(u32::from_le_bytes(reader.array("a BINBYTES length")?))
                } else {
                    u64::from(reader.u8("a SHORT_BINBYTES length")?)
                };
                let raw = reader.take(len, "a BINBYTES value")?;
                vm.stack.push(Value::Bytes(raw.to_vec()));
            }
            // BININT, BININT1, BININT2
            b'J' => {
                let value = i32::from_le_bytes(reader.array("a BININT value")?);
                vm.stack.push(Value::Int(i128::from(value)));
            }
            b'K' => {
                let value = reader.u8("a BININT1 value")?;
                vm.stack.push(Value::Int(i128::from(value)));
            }
            b'M' => {
                let value = u16::from_le_bytes(reader.array("a BININT2 value")?);
                vm.stack.push(Value::Int(i128::from(value)));
            }
            // LONG1 and LONG4: little-endian two's complement of any length.
            0x8a | 0x8b => {
                let len = if opcode == 0x8a {
                    u64::from(reader.u8("a LONG1 length")?)
                } else {
                    u64::from(u32::from_le_bytes(reader.array("a LONG4 length")?))
                };
                let raw = reader.take(len, "a LONG value")?;
                let value = long_from_le(raw)
                    .ok_or_else(|| vm.error(format!("a {len}-byte integer exceeds 128 bits")))?;
                vm.stack.push(Value::Int(value));
            }
            b'N' => vm.stack.push(Value::None),
            0x88 => vm.stack.push(Value::Bool(true)),
            0x89 => vm.stack.push(Value::Bool(false)),
            // BINFLOAT: big-endian f64.
            b'G' => {
                let value = f64::from_be_bytes(reader.array("a BINFLOAT value")?);
                vm.stack.push(Value::Float(value));
            }
            // BINPUT, LONG_BINPUT, MEMOIZE
            b'q' => {
                let index = reader.u8("a BINPUT index")?;
                vm.memo_put(u32::from(index))?;
            }
            b'r' => {
                let index = u32::from_le_bytes(reader.array("a LONG_BINPUT index")?);
                vm.memo_put(index)?;
            }
            0x94 => {
                let index = u32::try_from(vm.memo.len())
                    .map_err(|_| vm.error("the memo has more than 2^32 entries"))?;
                vm.memo_put(index)?;
            }
            // BINGET, LONG_BINGET
            b'h' => {
                let index = reader.u8("a BINGET index")?;
                let value = vm.memo_get(u32::from(index))?;
                vm.stack.push(value);
            }
            b'j' => {
                let index = u32::from_le_bytes(reader.array("a LONG_BINGET index")?);
                let value = vm.memo_get(index)?;
                vm.stack.push(value);
            }
            // GLOBAL: "module\nname\n".
            b'c' => {
                let module = reader.line("a GLOBAL module name")?.to_string();
                let name = reader.line("a GLOBAL name")?.to_string();
                vm.stack.push(Value::Global { module, name });
            }
            // REDUCE and NEWOBJ: callable (or class), argument tuple.
            b'R' | 0x81 => {
                let args = vm.pop()?;
                let callable = vm.pop()?;
                let value = reduce(&vm, callable, args)?;
                vm.stack.push(value);
            }
            // BUILD: sets attributes (for a state dict, `_metadata`), which are not needed here.
            b'b' => {
                vm.pop()?;
                vm.top()?;
            }
            // BINPERSID
            b'Q' => {
                let pid = vm.pop()?;
                let storage = persistent_storage(&vm, pid)?;
                vm.stack.push(storage);
            }
            // SETITEM
            b's' => {
                let value = vm.pop()?;
                let key = vm.pop()?;
                match vm.top()? {
                    Value::Dict(entries) => entries.push((key, value)),
                    other => {
                        let found = other.describe();
                        return Err(vm.error(format!("SETITEM on {found}, expected a dict")));
                    }
                }
            }
            // SETITEMS
            b'u' => {
                let items = vm.pop_mark()?;
                let new_entries = pairs(&vm, items)?;
                match vm.top()? {
                    Value::Dict(entries) => entries.extend(new_entries),
                    other => {
                        let found = other.describe();
                        return Err(vm.error(format!("SETITEMS on {found}, expected a dict")));
                    }
                }
            }
            // APPEND and APPENDS
            b'a' | b'e' => {
                let items = if opcode == b'a' {
                    vec![vm.pop()?]
                } else {
                    vm.pop_mark()?
                };
                match vm.top()? {
                    Value::List(list) => list.extend(items),
                    other => {
                        let found = other.describe();
                        return Err(vm.error(format!("APPEND on {found}, expected a list")));
                    }
                }
            }
            // POP, POP_MARK, DUP
            b'0' => {
                vm.pop()?;
            }
            b'1' => {
                vm.pop_mark()?;
            }
            b'2' => {
                let value = vm.top()?.clone();
                vm.stack.push(value);
            }
            other => {
                return Err(vm.error(format!(
                    "opcode {other:#04x} is not supported; only the binary opcodes of pickle \
                     protocols 1 and 2 that state dicts use are"
                )))
            }
        }
    }
}

fn utf8(vm: &Machine, raw: &[u8]) -> Result<String, PthError> {
    String::from_utf8(raw.to_vec()).map_err(|_| vm.error("a string is not valid UTF-8"))
}

/// Decodes a little-endian two's-complement integer of up to 16 bytes.
fn long_from_le(raw: &[u8]) -> Option<i128> {
    if raw.len() > 16 {
        return None;
    }
    if raw.is_empty() {
        return Some(0);
    }
    let fill = if raw[raw.len() - 1] & 0x80 != 0 {
        0xff
    } else {
        0
    };
    let mut full = [fill; 16];
    full[..raw.len()].copy_from_slice(raw);
    Some(i128::from_le_bytes(full))
}

fn pairs(vm: &Machine, items: Vec<Value>) -> Result<Vec<(Value, Value)>, PthError> {
    if items.len() % 2 == 1 {
        return Err(vm.error("a dict needs an even number of keys and values"));
    }
    let mut iter = items.into_iter();
    let mut out = Vec::new();
    while let (Some(key), Some(value)) = (iter.next(), iter.next()) {
        out.push((key, value));
    }
    Ok(out)
}

/// Interprets the calls that state dicts make; any other call becomes an opaque value.
fn reduce(vm: &Machine, callable: Value, args: Value) -> Result<Value, PthError> {
    let Value::Global { module, name } = &callable else {
        return Ok(Value::Opaque(callable.describe()));
    };
    let Value::Tuple(args) = args else {
        return Err(vm.error(format!(
            "the arguments of {module}.{name} are {}, expected a tuple",
            args.describe()
        )));
    };

    match (module.as_str(), name.as_str()) {
        ("collections", "OrderedDict") if args.is_empty() => Ok(Value::Dict(Vec::new())),
        ("torch._utils", "_rebuild_tensor_v2" | "_rebuild_tensor") => rebuild_tensor(vm, &args),
        ("torch._utils", "_rebuild_parameter") => args
            .into_iter()
            .next()
            .ok_or_else(|| vm.error("_rebuild_parameter needs the tensor as first argument")),
        _ => Ok(Value::Opaque(format!("{module}.{name}"))),
    }
}

/// Interprets `_rebuild_tensor_v2(storage, storage_offset, size, stride, ...)`.
fn rebuild_tensor(vm: &Machine, args: &[Value]) -> Result<Value, PthError> {
    let [storage, offset, size, stride, ..] = args else {
        return Err(vm.error(format!(
            "_rebuild_tensor_v2 got {} arguments, expected at least 4",
            args.len()
        )));
    };
    let storage = match storage {
        Value::Storage(Ok(storage)) => storage.clone(),
        // The storage type is unsupported; return it so that the tensor's name can be reported.
        Value::Storage(Err(storage_type)) => return Ok(Value::Storage(Err(storage_type.clone()))),
        other => {
            return Err(vm.error(format!(
                "_rebuild_tensor_v2 got {} as storage, expected a persistent storage id",
                other.describe()
            )))
        }
    };
    let offset = as_u64(vm, offset, "a tensor storage offset")?;
    let size = as_u64_tuple(vm, size, "a tensor size")?;
    let stride = as_u64_tuple(vm, stride, "a tensor stride")?;
    if size.len() != stride.len() {
        return Err(vm.error(format!(
            "a tensor has size {size:?} but stride {stride:?}; expected one stride per dimension"
        )));
    }
    Ok(Value::Tensor(TensorRef {
        storage,
        offset,
        size,
        stride,
    }))
}

/// Interprets the persistent id `('storage', storage_type, key, location, numel, view_metadata)`.
/// A view storage (`view_metadata = (view_key, offset, view_numel)`) becomes a window of its root.
fn persistent_storage(vm: &Machine, pid: Value) -> Result<Value, PthError> {
    let Value::Tuple(fields) = pid else {
        return Err(vm.error(format!(
            "a persistent id is {}, expected a tuple ('storage', type, key, location, numel, view)",
            pid.describe()
        )));
    };
    let [Value::Str(kind), storage_type, Value::Str(key), _location, numel, view] =
        fields.as_slice()
    else {
        return Err(vm.error(format!(
            "a persistent id has {} fields, expected ('storage', type, key, location, numel, view)",
            fields.len()
        )));
    };
    if kind != "storage" {
        return Err(vm.error(format!(
            "a persistent id is of kind {kind:?}, expected \"storage\""
        )));
    }
    let Value::Global { module, name } = storage_type else {
        return Err(vm.error(format!(
            "a storage type is {}, expected a global such as torch.FloatStorage",
            storage_type.describe()
        )));
    };
    let Some(dtype) = storage_dtype(module, name) else {
        return Ok(Value::Storage(Err(name.clone())));
    };
    let root_numel = as_u64(vm, numel, "a storage element count")?;

    let view_offset = match view {
        Value::None => 0,
        Value::Tuple(view) => match view.as_slice() {
            [_view_key, offset, _view_numel] => as_u64(vm, offset, "a storage view offset")?,
            _ => return Err(vm.error("a storage view is not (key, offset, numel)")),
        },
        other => {
            return Err(vm.error(format!(
                "a storage view is {}, expected None or (key, offset, numel)",
                other.describe()
            )))
        }
    };
    Ok(Value::Storage(Ok(StorageRef {
        dtype,
        key: key.clone(),
        root_numel,
        view_offset,
    })))
}

fn storage_dtype(module: &str, name: &str) -> Option<DType> {
    if module != "torch" {
        return None;
    }
    let dtype = match name {
        "FloatStorage" => DType::F32,
        "DoubleStorage" => DType::F64,
        "HalfStorage" => DType::F16,
        "BFloat16Storage" => DType::BF16,
        "LongStorage" => DType::I64,
        "IntStorage" => DType::I32,
        "ShortStorage" => DType::I16,
        // Bool storages hold one byte per element, 0 or 1.
        "ByteStorage" | "BoolStorage" => DType::U8,
        _ => return None,
    };
    Some(dtype)
}

fn as_u64(vm: &Machine, value: &Value, what: &str) -> Result<u64, PthError> {
    match value {
        Value::Int(i) => u64::try_from(*i)
            .map_err(|_| vm.error(format!("{what} is {i}, expected a non-negative integer"))),
        other => Err(vm.error(format!(
            "{what} is {}, expected an integer",
            other.describe()
        ))),
    }
}

fn as_u64_tuple(vm: &Machine, value: &Value, what: &str) -> Result<Vec<u64>, PthError> {
    match value {
        Value::Tuple(items) => items.iter().map(|item| as_u64(vm, item, what)).collect(),
        other => Err(vm.error(format!("{what} is {}, expected a tuple", other.describe()))),
    }
}

/// Collects the tensors of the root dict, in order; other values are skipped.
fn state_dict_tensors(root: Value) -> Result<Vec<(String, TensorRef)>, PthError> {
    let Value::Dict(entries) = root else {
        return Err(PthError::NotAStateDict {
            found: root.describe(),
        });
    };

    let mut tensors = Vec::new();
    for (key, value) in entries {
        let name = match key {
            Value::Str(name) => name,
            other => other.describe(),
        };
        match value {
            Value::Tensor(tensor) => tensors.push((name, tensor)),
            Value::Storage(Err(storage_type)) => {
                return Err(PthError::UnsupportedStorage { name, storage_type })
            }
            other => tracing::debug!(
                name,
                value = other.describe(),
                "skipping a non-tensor entry"
            ),
        }
    }
    Ok(tensors)
}

/// Reads the storages that follow the pickles, checking every declared size against the bytes
/// left in the file before copying.
fn read_storages<'a>(
    reader: &mut Reader<'a>,
    keys: &Value,
    tensors: &[(String, TensorRef)],
) -> Result<HashMap<String, &'a [u8]>, PthError> {
    let Value::List(keys) = keys else {
        return Err(PthError::Pickle {
            offset: reader.pos,
            message: format!(
                "the storage key list is {}, expected a list of strings",
                keys.describe()
            ),
        });
    };
    let declared: HashMap<&str, &StorageRef> = tensors
        .iter()
        .map(|(_, t)| (t.storage.key.as_str(), &t.storage))
        .collect();

    let mut storages = HashMap::new();
    for key in keys {
        let Value::Str(key) = key else {
            return Err(PthError::Pickle {
                offset: reader.pos,
                message: format!("a storage key is {}, expected a string", key.describe()),
            });
        };
        let numel = u64::from_le_bytes(reader.array("a storage element count")?);
        // Skipping a storage that no tensor uses would need its element size, which only a tensor
        // gives. Every storage of a state dict belongs to a tensor, so such a file is damaged.
        let Some(storage) = declared.get(key.as_str()) else {
            return Err(PthError::Pickle {
                offset: reader.pos,
                message: format!("storage {key:?} is listed but no tensor uses it"),
            });
        };
        if numel != storage.root_numel {
            return Err(PthError::StorageSize {
                key: key.clone(),
                expected: storage.root_numel,
                found: numel,
            });
        }
        let len = numel.saturating_mul(storage.dtype.size_in_bytes() as u64);
        let data = reader.take(len, "a storage")?;
        storages.insert(key.clone(), data);
    }
    Ok(storages)
}

/// Gathers one tensor from its storage bytes, honouring offset, size and stride.
fn build_tensor(
    name: &str,
    tensor: &TensorRef,
    storages: &HashMap<String, &[u8]>,
) -> Result<Tensor, PthError> {
    let storage = &tensor.storage;
    let data = storages
        .get(&storage.key)
        .ok_or_else(|| PthError::MissingStorage {
            key: storage.key.clone(),
        })?;
    let elem = storage.dtype.size_in_bytes();
    let storage_numel = (data.len() / elem) as u64;
    let out_of_bounds = || PthError::ViewOutOfBounds {
        name: name.to_string(),
        offset: storage.view_offset + tensor.offset,
        size: tensor.size.clone(),
        stride: tensor.stride.clone(),
        storage_numel,
    };

    // The element count and the last element reached, in checked arithmetic so that a damaged
    // size cannot overflow into a small allocation.
    let numel = tensor
        .size
        .iter()
        .try_fold(1u64, |acc, &s| acc.checked_mul(s))
        .ok_or_else(out_of_bounds)?;
    let start = storage
        .view_offset
        .checked_add(tensor.offset)
        .ok_or_else(out_of_bounds)?;
    if numel > 0 {
        let mut last = start;
        for (&size, &stride) in tensor.size.iter().zip(&tensor.stride) {
            let reach = (size - 1).checked_mul(stride).ok_or_else(out_of_bounds)?;
            last = last.checked_add(reach).ok_or_else(out_of_bounds)?;
        }
        if last >= storage_numel {
            return Err(out_of_bounds());
        }
    }

    let dims: Vec<usize> = tensor.size.iter().map(|&s| s as usize).collect();
    let mut out = Vec::with_capacity(numel as usize * elem);
    if numel > 0 {
        gather(data, elem, start as usize, &dims, &tensor.stride, &mut out);
    }
    Tensor::from_raw_buffer(&out, storage.dtype, &dims, &Device::Cpu).map_err(|source| {
        PthError::Tensor {
            name: name.to_string(),
            source,
        }
    })
}

/// Appends the elements of a strided view to `out` in row-major order; the caller has checked
/// that every index lies inside `data`.
fn gather(
    data: &[u8],
    elem: usize,
    start: usize,
    dims: &[usize],
    stride: &[u64],
    out: &mut Vec<u8>,
) {
    let mut index = vec![0usize; dims.len()];
    let mut position = start;
    loop {
        out.extend_from_slice(&data[position * elem..(position + 1) * elem]);

        // Advance the multi-index like an odometer, keeping `position` in step.
        let mut dim = dims.len();
        loop {
            if dim == 0 {
                return;
            }
            dim -= 1;
            index[dim] += 1;
            position += stride[dim] as usize;
            if index[dim] < dims[dim] {
                break;
            }
            position -= stride[dim] as usize * dims[dim];
            index[dim] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a legacy checkpoint by hand, opcode by opcode, as `torch.save` lays it out.
    struct Writer {
        bytes: Vec<u8>,
    }

    impl Writer {
        fn new() -> Self {
            Writer { bytes: Vec::new() }
        }
        fn op(&mut self, op: u8) -> &mut Self {
            self.bytes.push(op);
            self
        }
        fn string(&mut self, s: &str) -> &mut Self {
            self.op(b'X');
            self.bytes.extend((s.len() as u32).to_le_bytes());
            self.bytes.extend(s.as_bytes());
            self
        }
        fn int(&mut self, i: i32) -> &mut Self {
            self.op(b'J');
            self.bytes.extend(i.to_le_bytes());
            self
        }
        fn global(&mut self, module: &str, name: &str) -> &mut Self {
            self.op(b'c');
            self.bytes.extend(format!("{module}\n{name}\n").as_bytes());
            self
        }
        fn ints(&mut self, values: &[i32]) -> &mut Self {
            self.op(b'(');
            for &v in values {
                self.int(v);
            }
            self.op(b't')
        }
        /// Pushes `_rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())`.
        fn tensor(
            &mut self,
            storage_type: &str,
            key: &str,
            numel: i32,
            offset: i32,
            size: &[i32],
            stride: &[i32],
        ) -> &mut Self {
            self.global("torch._utils", "_rebuild_tensor_v2").op(b'(');
            self.op(b'(')
                .string("storage")
                .global("torch", storage_type)
                .string(key)
                .string("cpu")
                .int(numel)
                .op(b'N')
                .op(b't')
                .op(b'Q');
            self.int(offset).ints(size).ints(stride).op(0x89);
            self.global("collections", "OrderedDict").op(b')').op(b'R');
            self.op(b't').op(b'R')
        }
        fn header(&mut self) -> &mut Self {
            self.op(0x80).op(2).op(0x8a).op(10);
            self.bytes.extend(&MAGIC_NUMBER.to_le_bytes()[..10]);
            self.op(b'.');
            self.op(0x80).op(2).op(b'M');
            self.bytes.extend(1001u16.to_le_bytes());
            self.op(b'.');
            self.op(0x80).op(2).op(b'}').op(b'(');
            self.string("little_endian").op(0x88).op(b'u').op(b'.')
        }
        fn storage(&mut self, values: &[u8], numel: u64) -> &mut Self {
            self.bytes.extend(numel.to_le_bytes());
            self.bytes.extend(values);
            self
        }
    }

    /// Builds a file with a transposed view at offset 1 into 7 floats, and a scalar i64.
    fn sample_file() -> Vec<u8> {
        let mut w = Writer::new();
        w.header();
        w.op(0x80)
            .op(2)
            .global("collections", "OrderedDict")
            .op(b')')
            .op(b'R');
        w.op(b'(');
        w.string("view")
            .tensor("FloatStorage", "k0", 7, 1, &[2, 3], &[1, 2]);
        w.string("count")
            .tensor("LongStorage", "k1", 1, 0, &[], &[]);
        w.op(b'u').op(b'.');
        w.op(0x80)
            .op(2)
            .op(b']')
            .op(b'(')
            .string("k0")
            .string("k1")
            .op(b'e')
            .op(b'.');
        let floats: Vec<u8> = (0..7).flat_map(|i| (i as f32).to_le_bytes()).collect();
        w.storage(&floats, 7);
        w.storage(&42i64.to_le_bytes(), 1);
        w.bytes.clone()
    }

    #[test]
    fn strided_view_is_gathered() {
        let tensors = parse_legacy_state_dict(&sample_file()).unwrap();

        assert_eq!(tensors.len(), 2);
        assert_eq!(tensors[0].0, "view");
        // Element (i, j) sits at storage index 1 + i + 2 j.
        let view = tensors[0].1.to_vec2::<f32>().unwrap();
        assert_eq!(view, vec![vec![1.0, 3.0, 5.0], vec![2.0, 4.0, 6.0]]);
        assert_eq!(tensors[1].0, "count");
        assert_eq!(tensors[1].1.dims(), &[] as &[usize]);
        assert_eq!(tensors[1].1.to_scalar::<i64>().unwrap(), 42);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = sample_file();
        for len in 0..bytes.len() {
            assert!(
                parse_legacy_state_dict(&bytes[..len]).is_err(),
                "a file cut to {len} of {} bytes was accepted",
                bytes.len()
            );
        }
    }

    #[test]
    fn huge_storage_count_is_rejected() {
        let mut w = Writer::new();
        w.header();
        w.op(0x80).op(2).op(b'}').string("w");
        w.tensor("FloatStorage", "k0", i32::MAX, 0, &[2], &[1])
            .op(b's')
            .op(b'.');
        w.op(0x80).op(2).op(b']').string("k0").op(b'a').op(b'.');
        w.storage(&[0; 8], i32::MAX as u64);

        let err = parse_legacy_state_dict(&w.bytes).unwrap_err();
        assert!(matches!(err, PthError::Truncated { .. }), "{err}");
    }

    #[test]
    fn view_past_storage_is_rejected() {
        let mut w = Writer::new();
        w.header();
        w.op(0x80).op(2).op(b'}').string("w");
        w.tensor("FloatStorage", "k0", 2, 1, &[2], &[1])
            .op(b's')
            .op(b'.');
        w.op(0x80).op(2).op(b']').string("k0").op(b'a').op(b'.');
        w.storage(&[0; 8], 2);

        let err = parse_legacy_state_dict(&w.bytes).unwrap_err();
        assert!(matches!(err, PthError::ViewOutOfBounds { .. }), "{err}");
    }

    #[test]
    fn unsupported_storage_names_dtype() {
        let mut w = Writer::new();
        w.header();
        w.op(0x80).op(2).op(b'}').string("w");
        w.tensor("CharStorage", "k0", 2, 0, &[2], &[1])
            .op(b's')
            .op(b'.');

        let err = parse_legacy_state_dict(&w.bytes).unwrap_err();
        assert!(
            matches!(&err, PthError::UnsupportedStorage { name, storage_type }
                if name == "w" && storage_type == "CharStorage"),
            "{err}"
        );
        assert!(err.to_string().contains("CharStorage"));
    }

    #[test]
    fn zip_file_is_redirected() {
        let err = parse_legacy_state_dict(b"PK\x03\x04rest").unwrap_err();
        assert!(matches!(err, PthError::ZipFormat));
        assert!(err.to_string().contains("VarBuilder::from_pth"));
    }

    #[test]
    fn wrong_magic_is_rejected() {
        let mut w = Writer::new();
        w.op(0x80).op(2).int(7).op(b'.');
        let err = parse_legacy_state_dict(&w.bytes).unwrap_err();
        assert!(matches!(err, PthError::BadMagic { .. }), "{err}");
    }

    #[test]
    fn negative_long_decodes() {
        assert_eq!(long_from_le(&[0xff]), Some(-1));
        assert_eq!(long_from_le(&[0x00, 0x80]), Some(-32768));
        assert_eq!(
            long_from_le(&[0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]),
            Some(MAGIC_NUMBER)
        );
        assert_eq!(long_from_le(&[]), Some(0));
        assert_eq!(long_from_le(&[0; 17]), None);
    }
}
