//! Python's pickle, protocol 2, as `torch.save` writes it: the opcodes of the values a state
//! dict holds, memoised as Python's `Pickler` memoises them, and each tensor as a
//! `torch._utils._rebuild_tensor_v2` call on a storage named by a persistent id.
//!
//! Python memoises by object identity; here a string or a global is memoised by its content,
//! which is what Python's identity gives for the interned names a state dict repeats (`"cpu"`,
//! `"exp_avg"`, the classes). A pickle of distinct values is byte for byte Python's.

use std::collections::HashMap;

// Protocol 2 opcodes (Python's `pickle.py` names them).
const PROTO: u8 = 0x80;
const STOP: u8 = b'.';
const MARK: u8 = b'(';
const NONE: u8 = b'N';
const NEWTRUE: u8 = 0x88;
const NEWFALSE: u8 = 0x89;
const BININT: u8 = b'J';
const BININT1: u8 = b'K';
const BININT2: u8 = b'M';
const LONG1: u8 = 0x8a;
const BINFLOAT: u8 = b'G';
const BINUNICODE: u8 = b'X';
const EMPTY_TUPLE: u8 = b')';
const TUPLE: u8 = b't';
const TUPLE_OF: [u8; 3] = [0x85, 0x86, 0x87];
const EMPTY_LIST: u8 = b']';
const APPEND: u8 = b'a';
const APPENDS: u8 = b'e';
const EMPTY_DICT: u8 = b'}';
const SETITEM: u8 = b's';
const SETITEMS: u8 = b'u';
const GLOBAL: u8 = b'c';
const REDUCE: u8 = b'R';
const BUILD: u8 = b'b';
const BINPERSID: u8 = b'Q';
const BINPUT: u8 = b'q';
const LONG_BINPUT: u8 = b'r';
const BINGET: u8 = b'h';
const LONG_BINGET: u8 = b'j';

/// Items per `APPENDS` or `SETITEMS`, as Python batches them.
const BATCH: usize = 1000;

/// The element type of a tensor's storage, as torch's storage classes name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageType {
    /// `torch.FloatStorage`: `float32`.
    Float,
    /// `torch.ByteStorage`: `uint8`.
    Byte,
}

impl StorageType {
    /// The class the persistent id names.
    fn class_name(self) -> &'static str {
        match self {
            StorageType::Float => "FloatStorage",
            StorageType::Byte => "ByteStorage",
        }
    }
}

/// A contiguous CPU tensor with its own storage: row-major, little-endian bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorValue {
    /// The element type.
    pub storage_type: StorageType,
    /// The shape; empty for a scalar.
    pub shape: Vec<usize>,
    /// The elements' bytes.
    pub bytes: Vec<u8>,
}

impl TensorValue {
    /// A `float32` tensor of `shape` holding `values` in row-major order.
    pub fn f32(shape: Vec<usize>, values: &[f32]) -> Self {
        Self {
            storage_type: StorageType::Float,
            shape,
            bytes: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }

    /// A one-dimensional `uint8` tensor.
    pub fn u8(bytes: Vec<u8>) -> Self {
        Self {
            storage_type: StorageType::Byte,
            shape: vec![bytes.len()],
            bytes,
        }
    }

    /// Elements in the tensor.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// The strides of a contiguous tensor of this shape.
    fn strides(&self) -> Vec<usize> {
        let mut strides = vec![1; self.shape.len()];
        for i in (0..self.shape.len().saturating_sub(1)).rev() {
            strides[i] = strides[i + 1] * self.shape[i + 1];
        }
        strides
    }
}

/// A Python value, as far as a state dict and an RNG state need them.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `None`.
    None,
    /// `True` or `False`.
    Bool(bool),
    /// An `int`.
    Int(i64),
    /// A `float`.
    Float(f64),
    /// A `str`.
    Str(String),
    /// A `bytes`, which protocol 2 writes as `_codecs.encode(latin-1 text, "latin1")`.
    Bytes(Vec<u8>),
    /// A `tuple`.
    Tuple(Vec<Value>),
    /// A `list`.
    List(Vec<Value>),
    /// A `dict`, in insertion order.
    Dict(Vec<(Value, Value)>),
    /// A `torch.Tensor` on the CPU, without gradient.
    Tensor(TensorValue),
    /// A module-level name, such as a class: `module.name`.
    Global {
        /// The module (`numpy`).
        module: String,
        /// The name in it (`ndarray`).
        name: String,
    },
    /// `callable(*args)`, then `__setstate__(state)` where there is a state: how pickle
    /// rebuilds an object from its `__reduce__`.
    Call {
        /// What is called, a [`Value::Global`].
        callable: Box<Value>,
        /// Its arguments.
        args: Vec<Value>,
        /// The state `BUILD` hands the new object.
        state: Option<Box<Value>>,
    },
}

impl Value {
    /// A string.
    pub fn str(text: &str) -> Self {
        Value::Str(text.to_string())
    }

    /// A module-level name.
    pub fn global(module: &str, name: &str) -> Self {
        Value::Global {
            module: module.to_string(),
            name: name.to_string(),
        }
    }

    /// `module.name(*args)`.
    pub fn call(module: &str, name: &str, args: Vec<Value>) -> Self {
        Value::Call {
            callable: Box::new(Value::global(module, name)),
            args,
            state: None,
        }
    }

    /// This call, then `BUILD` with `state`.
    pub fn with_state(self, state: Value) -> Self {
        match self {
            Value::Call { callable, args, .. } => Value::Call {
                callable,
                args,
                state: Some(Box::new(state)),
            },
            other => other,
        }
    }

    /// A dict with string keys.
    pub fn str_dict<'a>(entries: impl IntoIterator<Item = (&'a str, Value)>) -> Self {
        Value::Dict(
            entries
                .into_iter()
                .map(|(key, value)| (Value::str(key), value))
                .collect(),
        )
    }
}

/// A pickle and the tensors whose storages it names, in the order of their keys.
pub struct Pickled<'a> {
    /// `data.pkl`.
    pub bytes: Vec<u8>,
    /// Storage `i` is `storages[i]`'s bytes.
    pub storages: Vec<&'a TensorValue>,
}

/// Pickles `value` with protocol 2.
pub fn dumps(value: &Value) -> Pickled<'_> {
    let mut pickler = Pickler::default();
    pickler.out.extend([PROTO, 2]);
    pickler.save(value);
    pickler.out.push(STOP);
    Pickled {
        bytes: pickler.out,
        storages: pickler.storages,
    }
}

/// What the memo knows again by content.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum MemoKey {
    Str(String),
    Global(String, String),
}

#[derive(Default)]
struct Pickler<'a> {
    out: Vec<u8>,
    memo: HashMap<MemoKey, u32>,
    /// Entries put in the memo so far, remembered or not.
    memo_len: u32,
    storages: Vec<&'a TensorValue>,
}

impl<'a> Pickler<'a> {
    fn save(&mut self, value: &'a Value) {
        match value {
            Value::None => self.out.push(NONE),
            Value::Bool(true) => self.out.push(NEWTRUE),
            Value::Bool(false) => self.out.push(NEWFALSE),
            Value::Int(v) => self.save_int(*v),
            Value::Float(v) => {
                self.out.push(BINFLOAT);
                self.out.extend(v.to_be_bytes());
            }
            Value::Str(text) => self.save_str(text),
            Value::Bytes(bytes) => self.save_bytes(bytes),
            Value::Tuple(items) => self.save_tuple(items),
            Value::List(items) => self.save_list(items),
            Value::Dict(entries) => self.save_dict(entries),
            Value::Tensor(tensor) => self.save_tensor(tensor),
            Value::Global { module, name } => self.save_global(module, name),
            Value::Call {
                callable,
                args,
                state,
            } => {
                self.save(callable);
                self.save_tuple(args);
                self.out.push(REDUCE);
                self.put(None);
                if let Some(state) = state {
                    self.save(state);
                    self.out.push(BUILD);
                }
            }
        }
    }

    /// Python's `save_long` for protocol 2.
    fn save_int(&mut self, v: i64) {
        if let Ok(small) = u8::try_from(v) {
            self.out.extend([BININT1, small]);
        } else if let Ok(small) = u16::try_from(v) {
            self.out.push(BININT2);
            self.out.extend(small.to_le_bytes());
        } else if let Ok(word) = i32::try_from(v) {
            self.out.push(BININT);
            self.out.extend(word.to_le_bytes());
        } else {
            let bytes = encode_long(v);
            self.out.extend([LONG1, bytes.len() as u8]);
            self.out.extend(bytes);
        }
    }

    fn save_str(&mut self, text: &str) {
        let key = MemoKey::Str(text.to_string());
        if self.get(&key) {
            return;
        }
        self.out.push(BINUNICODE);
        self.out.extend((text.len() as u32).to_le_bytes());
        self.out.extend(text.as_bytes());
        self.put(Some(key));
    }

    /// Protocol 2 has no bytes opcode: Python writes `_codecs.encode(text, "latin1")`, the
    /// bytes read as latin-1 text.
    fn save_bytes(&mut self, bytes: &[u8]) {
        let text: String = bytes.iter().map(|&b| char::from(b)).collect();
        self.save_global("_codecs", "encode");
        self.save_str(&text);
        self.save_str("latin1");
        self.out.push(TUPLE_OF[1]);
        self.put(None);
        self.out.push(REDUCE);
        self.put(None);
    }

    fn save_tuple(&mut self, items: &'a [Value]) {
        if items.is_empty() {
            self.out.push(EMPTY_TUPLE);
            return;
        }
        let short = items.len() <= TUPLE_OF.len();
        if !short {
            self.out.push(MARK);
        }
        for item in items {
            self.save(item);
        }
        self.out.push(if short {
            TUPLE_OF[items.len() - 1]
        } else {
            TUPLE
        });
        self.put(None);
    }

    fn save_list(&mut self, items: &'a [Value]) {
        self.out.push(EMPTY_LIST);
        self.put(None);
        for batch in items.chunks(BATCH) {
            if let [item] = batch {
                self.save(item);
                self.out.push(APPEND);
                continue;
            }
            self.out.push(MARK);
            for item in batch {
                self.save(item);
            }
            self.out.push(APPENDS);
        }
    }

    fn save_dict(&mut self, entries: &'a [(Value, Value)]) {
        self.out.push(EMPTY_DICT);
        self.put(None);
        for batch in entries.chunks(BATCH) {
            if let [(key, value)] = batch {
                self.save(key);
                self.save(value);
                self.out.push(SETITEM);
                continue;
            }
            self.out.push(MARK);
            for (key, value) in batch {
                self.save(key);
                self.save(value);
            }
            self.out.push(SETITEMS);
        }
    }

    fn save_global(&mut self, module: &str, name: &str) {
        let key = MemoKey::Global(module.to_string(), name.to_string());
        if self.get(&key) {
            return;
        }
        self.out.push(GLOBAL);
        for part in [module, name] {
            self.out.extend(part.as_bytes());
            self.out.push(b'\n');
        }
        self.put(Some(key));
    }

    /// `_rebuild_tensor_v2(storage, 0, size, stride, False, OrderedDict())`, the storage
    /// named by the persistent id `("storage", torch.XStorage, key, "cpu", numel)`.
    fn save_tensor(&mut self, tensor: &'a TensorValue) {
        let key = self.storages.len();
        self.storages.push(tensor);
        self.save_global("torch._utils", "_rebuild_tensor_v2");
        self.out.push(MARK);
        self.out.push(MARK);
        self.save_str("storage");
        self.save_global("torch", tensor.storage_type.class_name());
        self.save_str(&key.to_string());
        self.save_str("cpu");
        self.save_int(tensor.numel() as i64);
        self.out.push(TUPLE);
        self.put(None);
        self.out.push(BINPERSID);
        self.save_int(0);
        self.save_int_tuple(&tensor.shape);
        self.save_int_tuple(&tensor.strides());
        self.out.push(NEWFALSE);
        self.save_global("collections", "OrderedDict");
        self.out.push(EMPTY_TUPLE);
        self.out.push(REDUCE);
        self.put(None);
        self.out.push(TUPLE);
        self.put(None);
        self.out.push(REDUCE);
        self.put(None);
    }

    /// A tuple of sizes or strides, as `save_tuple` writes one.
    fn save_int_tuple(&mut self, values: &[usize]) {
        if values.is_empty() {
            self.out.push(EMPTY_TUPLE);
            return;
        }
        let short = values.len() <= TUPLE_OF.len();
        if !short {
            self.out.push(MARK);
        }
        for &value in values {
            self.save_int(value as i64);
        }
        self.out.push(if short {
            TUPLE_OF[values.len() - 1]
        } else {
            TUPLE
        });
        self.put(None);
    }

    /// Writes a reference to `key` if the memo holds it.
    fn get(&mut self, key: &MemoKey) -> bool {
        let Some(&index) = self.memo.get(key) else {
            return false;
        };
        match u8::try_from(index) {
            Ok(index) => self.out.extend([BINGET, index]),
            Err(_) => {
                self.out.push(LONG_BINGET);
                self.out.extend(index.to_le_bytes());
            }
        }
        true
    }

    /// Puts the value just written in the memo, as Python puts every container, string and
    /// global; `key` is what it is found again by, if anything.
    fn put(&mut self, key: Option<MemoKey>) {
        let index = self.memo_len;
        self.memo_len += 1;
        match u8::try_from(index) {
            Ok(index) => self.out.extend([BINPUT, index]),
            Err(_) => {
                self.out.push(LONG_BINPUT);
                self.out.extend(index.to_le_bytes());
            }
        }
        if let Some(key) = key {
            self.memo.insert(key, index);
        }
    }
}

/// Python's `pickle.encode_long`: the shortest little-endian two's complement bytes.
fn encode_long(v: i64) -> Vec<u8> {
    let mut bytes = v.to_le_bytes().to_vec();
    while let [.., second, last] = bytes[..] {
        let redundant = (last == 0 && second & 0x80 == 0) || (last == 0xff && second & 0x80 != 0);
        if !redundant {
            break;
        }
        bytes.pop();
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_take_pythons_shortest_opcode() {
        let pickled = |v| dumps(&Value::Int(v)).bytes;
        assert_eq!(pickled(7), [PROTO, 2, BININT1, 7, STOP]);
        assert_eq!(pickled(624), [PROTO, 2, BININT2, 0x70, 0x02, STOP]);
        assert_eq!(
            pickled(-1),
            [PROTO, 2, BININT, 0xff, 0xff, 0xff, 0xff, STOP]
        );
        // 2**31 and 2**32 - 1: Python's LONG1 with a sign byte where the top bit is set.
        assert_eq!(
            pickled(1 << 31),
            [PROTO, 2, LONG1, 5, 0, 0, 0, 0x80, 0, STOP]
        );
        assert_eq!(encode_long(0xffff_ffff), [0xff, 0xff, 0xff, 0xff, 0]);
        assert_eq!(encode_long(-(1 << 40)), [0, 0, 0, 0, 0, 0xff]);
        assert_eq!(encode_long(i64::MIN).len(), 8);
    }

    #[test]
    fn strings_and_globals_are_written_once_then_referenced() {
        let value = Value::List(vec![
            Value::str("cpu"),
            Value::global("torch", "FloatStorage"),
            Value::str("cpu"),
            Value::global("torch", "FloatStorage"),
        ]);
        let bytes = dumps(&value).bytes;
        let mut expected = vec![PROTO, 2, EMPTY_LIST, BINPUT, 0, MARK];
        expected.extend([BINUNICODE, 3, 0, 0, 0, b'c', b'p', b'u', BINPUT, 1]);
        expected.extend(b"ctorch\nFloatStorage\n");
        expected.extend([BINPUT, 2, BINGET, 1, BINGET, 2, APPENDS, STOP]);
        assert_eq!(bytes, expected);
    }

    #[test]
    fn memo_indices_past_255_take_the_long_opcodes() {
        let strings: Vec<Value> = (0..300).map(|i| Value::Str(i.to_string())).collect();
        let mut items = strings.clone();
        items.push(Value::str("299"));
        let bytes = dumps(&Value::List(items)).bytes;
        // The list is memo 0, string i is memo i + 1; "299" is 300, found again at the end.
        let tail = [LONG_BINGET, 0x2c, 0x01, 0, 0, APPENDS, STOP];
        assert!(bytes.ends_with(&tail), "{:?}", &bytes[bytes.len() - 8..]);
        let put_256 = [LONG_BINPUT, 0, 1, 0, 0];
        assert!(bytes.windows(5).any(|w| w == put_256));
    }

    #[test]
    fn a_tensor_names_its_storage_by_a_persistent_id_in_order() {
        let a = TensorValue::f32(vec![2, 3], &[0.0; 6]);
        let b = TensorValue::f32(vec![], &[1.0]);
        let value = Value::Tuple(vec![Value::Tensor(a.clone()), Value::Tensor(b.clone())]);
        let pickled = dumps(&value);
        assert_eq!(pickled.storages, [&a, &b]);
        assert_eq!(a.strides(), [3, 1]);
        let text = String::from_utf8_lossy(&pickled.bytes);
        assert_eq!(text.matches("_rebuild_tensor_v2").count(), 1);
        assert_eq!(text.matches("FloatStorage").count(), 1);
        // Storage keys "0" and "1", each a one-character BINUNICODE.
        for key in [b'0', b'1'] {
            let id = [BINUNICODE, 1, 0, 0, 0, key];
            assert!(pickled.bytes.windows(6).any(|w| w == id), "key {key}");
        }
    }
}
