use super::*;

#[test]
fn codec_detects_corruption() {
    let mut bytes = encode(&vec![1, 2, 3]);
    assert_eq!(
        decode::<Vec<i32>>("t", &bytes).expect("decode"),
        vec![1, 2, 3]
    );
    let last = bytes.len() - 2;
    bytes[last] ^= 0x01;
    assert!(matches!(
        decode::<Vec<i32>>("t", &bytes),
        Err(StoreError::Corrupt { .. })
    ));
    assert!(matches!(
        decode::<Vec<i32>>("t", &[0, 1]),
        Err(StoreError::Corrupt { .. })
    ));
    let mut future = encode(&1);
    future[1] = 9;
    assert!(matches!(
        decode::<i32>("t", &future),
        Err(StoreError::Corrupt { .. })
    ));
}

#[test]
fn generations_increase_across_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = {
        let store = Store::open(dir.path()).expect("open");
        let one = store.next_generation().expect("gen");
        let two = store.next_generation().expect("gen");
        assert!(two > one);
        two
    };
    let store = Store::open(dir.path()).expect("reopen");
    assert!(store.next_generation().expect("gen") > first);
}
