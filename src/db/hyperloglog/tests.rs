use super::*;
use rand::{Rng, SeedableRng};

fn add_all(v: &mut Vec<u8>, items: impl Iterator<Item = Vec<u8>>) {
    let mut h = Hll::new(std::mem::take(v));
    for it in items {
        h.add(&it, 3000).expect("valid");
    }
    *v = h.bytes;
}

#[test]
fn new_value_is_one_xzero() {
    let v = new_sparse();
    assert_eq!(&v[..], b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\0\x7f\xff");
    assert!(is_valid(&v));
    assert_eq!(count(&v), Ok(0));
    assert_eq!(decode(&v), "Z:16384");
}

#[test]
fn pattern_length_of_known_elements() {
    // Registers and run lengths Redis 7.0.15 sets (PFADD then PFDEBUG DECODE: "a" gives
    // "Z:12711 v:2,1 Z:3672"); protocol-tests/cases/hyperloglog*.txt check many more.
    assert_eq!(pat_len(b"a"), (12711, 2));
    assert_eq!(pat_len(b"hello"), (9216, 1));
    assert_eq!(pat_len(b""), (5938, 2));
    let mut v = Hll::new(new_sparse());
    assert_eq!(v.add(b"a", 3000), Ok(true));
    assert_eq!(v.add(b"a", 3000), Ok(false));
    assert_eq!(decode(&v.bytes), "Z:12711 v:2,1 Z:3672");
}

#[test]
fn selftest_passes() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    assert_eq!(selftest(3000, || rng.gen::<u32>()), Ok(()));
}

#[test]
fn dense_registers_keep_their_neighbours() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut dense = vec![0u8; DENSE_SIZE - HDR_SIZE];
    let vals: Vec<u8> = (0..REGISTERS).map(|_| rng.gen_range(0..64)).collect();
    for (i, &v) in vals.iter().enumerate() {
        dense_put(&mut dense, i, v);
    }
    for (i, &v) in vals.iter().enumerate() {
        assert_eq!(dense_get(&dense, i), v, "register {i}");
    }
}

#[test]
fn sparse_and_dense_agree_and_promote() {
    let mut sparse = Hll::new(new_sparse());
    let mut dense = Hll::new(new_sparse());
    dense.to_dense().unwrap();
    assert_eq!(dense.bytes.len(), DENSE_SIZE);
    for i in 0..5000u32 {
        let e = format!("ele:{i}").into_bytes();
        sparse.add(&e, 3000).unwrap();
        dense.add(&e, 3000).unwrap();
        if sparse.bytes[4] == SPARSE {
            assert!(sparse.bytes.len() <= 3000);
            assert_eq!(count(&sparse.bytes), count(&dense.bytes), "after {i}");
        }
    }
    assert_eq!(sparse.bytes[4], DENSE, "promoted past hll-sparse-max-bytes");
    assert_eq!(sparse.bytes[HDR_SIZE..], dense.bytes[HDR_SIZE..]);
}

#[test]
fn merge_is_the_union() {
    let mut a = new_sparse();
    let mut b = new_sparse();
    add_all(&mut a, (0..2000).map(|i: u32| i.to_be_bytes().to_vec()));
    add_all(&mut b, (1000..3000).map(|i: u32| i.to_be_bytes().to_vec()));
    let mut max: Box<Raw> = Box::new([0; REGISTERS]);
    merge(&mut max, &a).unwrap();
    merge(&mut max, &b).unwrap();
    let mut all = new_sparse();
    add_all(&mut all, (0..3000).map(|i: u32| i.to_be_bytes().to_vec()));
    assert_eq!(count_raw(&max), count(&all).unwrap());
}

#[test]
fn corrupted_sparse_is_detected() {
    let mut v = new_sparse();
    v[HDR_SIZE] = 0x7f;
    v[HDR_SIZE + 1] = 0xfe; // XZERO of 16383: one register short
    assert_eq!(count(&v), Err(Corrupt));
    let mut max: Box<Raw> = Box::new([0; REGISTERS]);
    assert_eq!(merge(&mut max, &v), Err(Corrupt));
    assert_eq!(Hll::new(v.clone()).to_dense(), Err(Corrupt));
    // Nothing covers register 16383, so setting it fails; lower registers can be set.
    assert_eq!(Hll::new(v.clone()).sparse_set(16383, 3, 3000), Err(Corrupt));
    assert_eq!(Hll::new(v).sparse_set(5, 3, 3000), Ok(true));
}

/// The cardinality error of a large random set stays within a few standard errors
/// (1.04/sqrt(16384) = 0.81%) at every decade, for the dense and the sparse forms.
#[test]
fn cardinality_error_bounds() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let mut v = Hll::new(new_sparse());
    let relerr = 1.04 / (REGISTERS as f64).sqrt();
    let mut n: u64 = 0;
    for target in [10u64, 100, 1_000, 10_000, 100_000, 1_000_000] {
        while n < target {
            let ele: [u8; 16] = rng.gen();
            v.add(&ele, 3000).unwrap();
            n += 1;
        }
        let est = count(&v.bytes).unwrap() as f64;
        let err = (est - n as f64).abs() / n as f64;
        assert!(err <= 5.0 * relerr, "n={n} estimate={est} error={err:.4}");
    }
}
