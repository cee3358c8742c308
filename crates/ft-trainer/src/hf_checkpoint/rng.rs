//! `rng_state.pth`: the random states transformers' Trainer saves and restores
//! (`_save_rng_state`, `_load_rng_state`), as `set_seed(seed)` leaves them.
//!
//! bert-ft draws its data order and dropout masks from ChaCha8 streams keyed by the seed and
//! the step (`rng_state.json`), which no Python generator reproduces. transformers needs
//! Python's, numpy's and torch's CPU generator states from this file, or it warns that
//! reproducibility is not guaranteed; the states here are those of `random.seed(seed)`,
//! `np.random.seed(seed % 2**32)` and `torch.manual_seed(seed)`, the three calls of
//! transformers' `set_seed`. A run resumed in transformers draws from them afresh, as from
//! its own seed, not from where bert-ft's streams were.

use crate::torch_save::{TensorValue, Value};

/// MT19937's state words.
const N: usize = 624;

/// MT19937's state after `init_genrand(seed)`: numpy's `mt19937_seed`, torch's `mt19937`.
fn init_genrand(seed: u32) -> [u32; N] {
    let mut state = [0u32; N];
    state[0] = seed;
    for i in 1..N {
        let previous = state[i - 1];
        state[i] = 1_812_433_253u32
            .wrapping_mul(previous ^ (previous >> 30))
            .wrapping_add(i as u32);
    }
    state
}

/// MT19937's state after `init_by_array(key)`: CPython's `random.seed` of an int, whose key
/// is the int's 32-bit words, least significant first.
fn init_by_array(key: &[u32]) -> [u32; N] {
    let mut mt = init_genrand(19_650_218);
    let (mut i, mut j) = (1, 0);
    for _ in 0..N.max(key.len()) {
        let mixed = (mt[i - 1] ^ (mt[i - 1] >> 30)).wrapping_mul(1_664_525);
        mt[i] = (mt[i] ^ mixed).wrapping_add(key[j]).wrapping_add(j as u32);
        i += 1;
        j += 1;
        if i >= N {
            mt[0] = mt[N - 1];
            i = 1;
        }
        if j >= key.len() {
            j = 0;
        }
    }
    for _ in 0..N - 1 {
        let mixed = (mt[i - 1] ^ (mt[i - 1] >> 30)).wrapping_mul(1_566_083_941);
        mt[i] = (mt[i] ^ mixed).wrapping_sub(i as u32);
        i += 1;
        if i >= N {
            mt[0] = mt[N - 1];
            i = 1;
        }
    }
    mt[0] = 0x8000_0000;
    mt
}

/// The words `random.seed(seed)` keys its generator with.
fn python_key(seed: u64) -> Vec<u32> {
    let (low, high) = (seed as u32, (seed >> 32) as u32);
    match high {
        0 => vec![low],
        _ => vec![low, high],
    }
}

/// `random.getstate()` after `random.seed(seed)`: `(3, (624 words..., 624), None)`.
fn python_state(seed: u64) -> Value {
    let mut words: Vec<Value> = init_by_array(&python_key(seed))
        .iter()
        .map(|&w| Value::Int(i64::from(w)))
        .collect();
    words.push(Value::Int(N as i64));
    Value::Tuple(vec![Value::Int(3), Value::Tuple(words), Value::None])
}

/// `np.random.get_state()` after `np.random.seed(seed)`:
/// `("MT19937", uint32 array of 624, 624, 0, 0.0)`, the array pickled as numpy 2 does.
fn numpy_state(seed: u32) -> Value {
    let key: Vec<u8> = init_genrand(seed)
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect();
    let dtype = Value::call(
        "numpy",
        "dtype",
        vec![Value::str("u4"), Value::Bool(false), Value::Bool(true)],
    )
    .with_state(Value::Tuple(vec![
        Value::Int(3),
        Value::str("<"),
        Value::None,
        Value::None,
        Value::None,
        Value::Int(-1),
        Value::Int(-1),
        Value::Int(0),
    ]));
    let array = Value::call(
        "numpy._core.multiarray",
        "_reconstruct",
        vec![
            Value::global("numpy", "ndarray"),
            Value::Tuple(vec![Value::Int(0)]),
            Value::Bytes(b"b".to_vec()),
        ],
    )
    .with_state(Value::Tuple(vec![
        Value::Int(1),
        Value::Tuple(vec![Value::Int(N as i64)]),
        dtype,
        Value::Bool(false),
        Value::Bytes(key),
    ]));
    Value::Tuple(vec![
        Value::str("MT19937"),
        array,
        Value::Int(N as i64),
        Value::Int(0),
        Value::Float(0.0),
    ])
}

/// `torch.random.get_rng_state()` after `torch.manual_seed(seed)`: the bytes of torch's
/// `CPUGeneratorImplState` (the legacy `THGeneratorState` of 5048 bytes, then the float
/// normal sample and its flag, padded to 5056).
fn torch_cpu_state(seed: u64) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(5056);
    bytes.extend(seed.to_le_bytes()); // the_initial_seed
    bytes.extend(1i32.to_le_bytes()); // left
    bytes.extend(1i32.to_le_bytes()); // seeded
    bytes.extend(0u64.to_le_bytes()); // next
    for word in init_genrand(seed as u32) {
        bytes.extend(u64::from(word).to_le_bytes());
    }
    // normal_x, normal_y, normal_rho, normal_is_valid and the rest: zero.
    bytes.resize(5056, 0);
    bytes
}

/// What `rng_state.pth` holds for a run seeded with `seed`.
pub fn rng_state(seed: u64) -> Value {
    Value::str_dict([
        ("python", python_state(seed)),
        ("numpy", numpy_state(seed as u32)),
        ("cpu", Value::Tensor(TensorValue::u8(torch_cpu_state(seed)))),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeding_gives_the_words_python_numpy_and_torch_give() {
        // From Python: np.random.seed(42) / torch.manual_seed(42), and random.seed(42).
        assert_eq!(init_genrand(42)[..3], [42, 3_107_752_595, 1_895_908_407]);
        assert_eq!(
            init_by_array(&python_key(42))[..3],
            [2_147_483_648, 3_564_348_608, 1_266_698_288]
        );
        // torch keeps the whole seed, and seeds the generator with its low word.
        let state = torch_cpu_state((1 << 40) + 5);
        assert_eq!(state.len(), 5056);
        assert_eq!(state[..8], ((1u64 << 40) + 5).to_le_bytes());
        assert_eq!(state[24..32], 5u64.to_le_bytes());
        assert_eq!(python_key(1 << 40), [0, 256]);
    }
}
