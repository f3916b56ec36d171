// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title LibStepState
/// @notice The one-step executor's memory model: the Solidity twin of `StepState` run over a
///         `WitnessView` (node/protocol/step.py, node/protocol/witness.py; docs/protocol.md
///         section 5). It serves one step's reads and buffers its writes:
///         - the witness starts with the pre-state's 16 table roots, which must make the
///           pre-state root;
///         - the first access of the step to a key (get or set) consumes the next witness
///           entry, which must name that key, and verifies its record and table-level
///           siblings against the key's table root; later accesses see the step's own latest
///           record. Nothing is written before `flush`, so every verification is against
///           the pre-state: per table, the path of the last verified key is cached, and a
///           later key is hashed only up to where its path meets the cached one (the
///           table's first key goes up to the table root);
///         - `flush` recomputes the root of every table with a changed key from the final
///           records of all the keys the step touched in it and their pre-state siblings
///           (one multiproof pass, `node.protocol.merkle.root_after_updates`), then the state
///           root from the table roots; the witness must have been consumed exactly.
///         A witness entry that names another key, or does not verify, reverts `BadWitness`.
/// @dev The witness stays in calldata: `StepState` keeps only offsets into it, and every
///      proof is hashed straight from calldata through the scratch space.
///
///      Witness (section 5): `rlp([roots, [entry, ...]])`, `roots` the 16 table roots (512
///      bytes), an entry `[table, index, record, bitmap, siblings]` where `siblings` holds
///      the table-level siblings whose `bitmap` bit is set (bottom-up); an unset bit stands
///      for `ZERO_HASHES[h]`. The reader is lenient where leniency cannot change the result:
///      it does not insist on canonical RLP headers or integers inside the witness, ignores
///      bitmap bits at or above the table depth, and accepts a present sibling equal to the
///      zero hash, and does not read a later key's siblings above the height where its
///      path meets its table's cached path; but every entry must name exactly the key
///      accessed, a table's first entry must hold exactly the siblings its bitmap calls
///      for, and every proof must verify against its table root (see `_tableRootAfter`
///      for why the unread siblings never reach the post-root).
///
///      Records returned by `get` are the step's own memory: callers decode them and must
///      not modify them in place (a changed record goes back through `set`). A `set` record
///      is kept by reference. Whether a key changed is decided on the leaf hash of its final
///      record against that of its first one, as Python compares the bytes.
library LibStepState {
    /// @notice The witness does not prove the access the step makes next.
    error BadWitness(uint256 table, uint256 index);
    /// @notice The witness has entries the step never used.
    error WitnessNotConsumed();

    /// @notice Depth of table t (LibStateLayout.depthOf) in byte t of this word (0: no table):
    ///         meta 8, accounts 32, markets 16, orders 40, levels 41, book 35, withdrawals 40.
    uint256 private constant DEPTHS = 0x0820102829232800000000000000000000000000000000000000000000000000;
    /// @notice Zero hashes kept: `ZERO_HASHES[0..MAX_TABLE_DEPTH - 1]`.
    uint256 private constant MAX_TABLE_DEPTH = 41;
    /// @notice `ZERO_HASHES[h]` (node/protocol/merkle.py) for h < MAX_TABLE_DEPTH, 32 bytes
    ///         each: a constant, so a step copies it instead of hashing 40 times.
    bytes private constant ZERO_HASH_BYTES =
        hex"0000000000000000000000000000000000000000000000000000000000000000ad3228b676f7d3cd4284a5443f17f1962b36e491b30a40b2405849e597ba5fb5"
        hex"b4c11951957c6f8f642c4af61cd6b24640fec6dc7fc607ee8206a99e92410d3021ddb9a356815c3fac1026b6dec5df3124afbadb485c9ba5a3e3398a04b7ba85"
        hex"e58769b32a1beaf1ea27375a44095a0d1fb664ce2dd358e7fcbfb78c26a193440eb01ebfc9ed27500cd4dfc979272d1f0913cc9f66540d7e8005811109e1cf2d"
        hex"887c22bd8750d34016ac3c66b5ff102dacdd73f6b014e710b51e8022af9a1968ffd70157e48063fc33c97a050f7f640233bf646cc98d9524c6b92bcf3ab56f83"
        hex"9867cc5f7f196b93bae1e27e6320742445d290f2263827498b54fec539f756afcefad4e508c098b9a7e1d8feb19955fb02ba9675585078710969d3440f5054e0"
        hex"f9dc3e7fe016e050eff260334f18a5d4fe391d82092319f5964f2e2eb7c1c3a5f8b13a49e282f609c317a833fb8d976d11517c571d1221a265d25af778ecf892"
        hex"3490c6ceeb450aecdc82e28293031d10c7d73bf85e57bf041a97360aa2c5d99cc1df82d9c4b87413eae2ef048f94b4d3554cea73d92b0f7af96e0271c691e2bb"
        hex"5c67add7c6caf302256adedf7ab114da0acfe870d449a3a489f781d659e8beccda7bce9f4e8618b6bd2f4132ce798cdc7a60e7e1460a7299e3c6342a579626d2"
        hex"2733e50f526ec2fa19a22b31e8ed50f23cd1fdf94c9154ed3a7609a2f1ff981fe1d3b5c807b281e4683cc6d6315cf95b9ade8641defcb32372f1c126e398ef7a"
        hex"5a2dce0a8a7f68bb74560f8f71837c2c2ebbcbf7fffb42ae1896f13f7c7479a0b46a28b6f55540f89444f63de0378e3d121be09e06cc9ded1c20e65876d36aa0"
        hex"c65e9645644786b620e2dd2ad648ddfcbf4a7e5b1a3a4ecfe7f64667a3f0b7e2f4418588ed35a2458cffeb39b93d26f18d2ab13bdce6aee58e7b99359ec2dfd9"
        hex"5a9c16dc00d6ef18b7933a6f8dc65ccb55667138776f7dea101070dc8796e3774df84f40ae0c8229d0d6069e5c8f39a7c299677a09d367fc7b05e3bc380ee652"
        hex"cdc72595f74c7b1043d0e1ffbab734648c838dfb0527d971b602bc216c9619ef0abf5ac974a1ed57f4050aa510dd9c74f508277b39d7973bb2dfccc5eeb0618d"
        hex"b8cd74046ff337f0a7bf2c8e03e10f642c1886798d71806ab1e888d9e5ee87d0838c5655cb21c6cb83313b5a631175dff4963772cce9108188b34ac87c81c41e"
        hex"662ee4dd2dd7b2bc707961b1e646c4047669dcb6584f0d8d770daf5d7e7deb2e388ab20e2573d171a88108e79d820e98f26c0b84aa8b2f4aa4968dbb818ea322"
        hex"93237c50ba75ee485f4c22adf2f741400bdf8d6a9cc7df7ecae576221665d7358448818bb4ae4562849e949e17ac16e0be16688e156b5cf15e098c627c0056a9"
        hex"27ae5ba08d7291c96c8cbddcc148bf48a6d68c7974b94356f53754ef6171d757bf558bebd2ceec7f3c5dce04a4782f88c2c6036ae78ee206d0bc5289d20461a2"
        hex"e21908c2968c0699040a6fd866a577a99a9d2ec88745c815fd4a472c789244daae824d72ddc272aab68a8c3022e36f10454437c1886f3ff9927b64f232df414f"
        hex"27e429a4bef3083bc31a671d046ea5c1f5b8c3094d72868d9dfdc12c7334ac5f743cc5c365a9a6a15c1f240ac25880c7a9d1de290696cb766074a1d83d927816"
        hex"4adcf616c3bfabf63999a01966c998b7bb572774035a63ead49da73b5987f34775786645d0c5dd7c04a2f8a75dcae085213652f5bce3ea8b9b9bedd1cab3c5e9"
        hex"b88b152c9b8a7b79637d35911848b0c41e7cc7cca2ab4fe9a15f9c38bb4bb939";
    /// @notice How many table roots the witness starts with (2^GLOBAL_DEPTH).
    uint256 private constant TABLE_SLOTS = 16;
    /// @notice Least initial capacity of the touched-key list. `init` starts it at the
    ///         number of witness entries (every first touch consumes one, so a step that
    ///         does not revert never outgrows it), rounded up to a power of two, within
    ///         [MIN_CAPACITY, MAX_INITIAL_CAPACITY]; it doubles when full. The capacity only
    ///         costs gas: it never changes a result.
    uint256 private constant MIN_CAPACITY = 8;
    /// @notice Most witness entries `init` counts for the initial capacity.
    uint256 private constant MAX_INITIAL_CAPACITY = 256;
    /// @notice Fibonacci-hashing multiplier of the key index (2^256 / golden ratio, odd).
    uint256 private constant HASH_MULTIPLIER = 0x9e3779b97f4a7c15f39cc0605cedc8341082276bf3a27251f86c6a11d0c18e95;
    /// @notice The low 64 bits.
    uint256 private constant MASK64 = 0xffffffffffffffff;

    /// @notice A key the step has touched.
    /// @dev The assembly below reads and writes its fields at their memory offsets: table
    ///      0x00, index 0x20, first 0x40, current 0x60, firstLeaf 0x80, written 0xa0 (0 or
    ///      1), proof 0xc0. Keep the field order.
    struct Touched {
        /// @notice Table id (node/protocol/state.py).
        uint256 table;
        /// @notice Index within the table.
        uint256 index;
        /// @notice The record the pre-state holds (verified by the key's first witness entry).
        bytes first;
        /// @notice The step's latest record for the key.
        bytes current;
        /// @notice Leaf hash of `first` (zero when empty), computed when it was verified.
        bytes32 firstLeaf;
        /// @notice Whether the step has `set` the key (only such keys can need a write).
        bool written;
        /// @notice Where the key's pre-state siblings are in calldata (`_entry`'s packing:
        ///         `bitmap << 128 | siblingsEnd << 64 | siblingsStart`).
        uint256 proof;
    }

    /// @notice One step's view of the state.
    struct StepState {
        /// @notice The current root: the pre-state root until `flush`, then the post-root.
        bytes32 root;
        /// @notice The table roots: the pre-state's (from the witness) until `flush`.
        bytes32[] tableRoots;
        /// @notice Whether the witness's table roots make `root` (else every access reverts).
        bool rootsOk;
        /// @notice Calldata offset of the next unread witness entry.
        uint256 cursor;
        /// @notice Calldata offset one past the witness list's last byte.
        uint256 end;
        /// @notice Touched keys in first-touch order (`count` of them are used; the array's
        ///         length is its capacity and the unused elements are not initialised).
        Touched[] touched;
        /// @notice How many entries of `touched` are used.
        uint256 count;
        /// @notice Open-addressing hash table over `touched` (length a power of two, at most
        ///         half full): 0 = empty, else `key << 32 | t` where `key = table << 64 |
        ///         index` and `t` is the memory pointer of the key's `Touched` (nonzero, and
        ///         below 2^32 as any memory offset a transaction can pay for).
        uint256[] slots;
        /// @notice `ZERO_HASHES[h]` for h < MAX_TABLE_DEPTH, 32 bytes each (ZERO_HASH_BYTES).
        bytes zeros;
        /// @notice Per table, 0 until its first touch, then a memory pointer to its read
        ///         cache: word 0 the index of the table's last touched key L, words
        ///         1 + h for h <= depth L's pre-state path (`path[0]` its leaf, `path[depth]`
        ///         the table root). Every word of it is a verified pre-state node.
        uint256[] caches;
    }

    /// @notice A step state at `root` reading from `witness` (an RLP list, in calldata).
    /// @dev Never reverts: a witness that is not `[roots, entries]` with roots that make
    ///      `root` is treated as an empty one whose every access reverts `BadWitness`, so a
    ///      step that touches no state needs no witness at all.
    function init(bytes32 root, bytes calldata witness) internal pure returns (StepState memory st) {
        st.root = root;
        uint256 start;
        uint256 end;
        assembly ("memory-safe") {
            start := witness.offset
            end := add(start, witness.length)
        }
        st.cursor = end;
        st.end = end;
        st.tableRoots = new bytes32[](TABLE_SLOTS);
        uint256 capacity = MIN_CAPACITY;
        (bool ok, uint256 payload, uint256 length) = _list(start, end);
        if (ok && payload + length == end && payload + 3 <= end) {
            // roots: a 512-byte string, always long-form `0xb9 0x0200`
            uint256 header;
            assembly ("memory-safe") {
                header := shr(232, calldataload(payload))
            }
            uint256 rootsAt = payload + 3;
            if (header == 0xb90200 && rootsAt + 32 * TABLE_SLOTS <= end) {
                (bool listOk, uint256 entries, uint256 entriesLength) = _list(rootsAt + 32 * TABLE_SLOTS, end);
                if (listOk && entries + entriesLength == end) {
                    bytes32[] memory roots = st.tableRoots;
                    assembly ("memory-safe") {
                        calldatacopy(add(roots, 0x20), rootsAt, 0x200)
                    }
                    st.rootsOk = _globalRoot(roots) == root;
                    st.cursor = entries;
                    if (st.rootsOk) capacity = _initialCapacity(entries, end);
                }
            }
        }
        st.touched = _allocTouched(capacity);
        st.slots = new uint256[](2 * capacity);
        st.zeros = ZERO_HASH_BYTES;
        st.caches = new uint256[](TABLE_SLOTS);
    }

    /// @notice The step's current record at (table, index); empty if absent.
    function get(StepState memory st, uint256 table, uint256 index)
        internal
        pure
        returns (bytes memory record)
    {
        uint256[] memory slots = st.slots;
        uint256 d;
        uint256 key;
        uint256 slot;
        uint256 t;
        assembly ("memory-safe") {
            // `_key` and `_find` inlined: the hit path is the hottest code of a step
            d := byte(table, DEPTHS) // 0 for table >= 32 too
            key := or(shl(64, table), index)
            let mask := shl(5, sub(mload(slots), 1))
            let data := add(slots, 0x20)
            slot := and(shr(123, mul(key, HASH_MULTIPLIER)), mask) // a byte offset
            // (no key outside the layout is in the table: it stays absent, t = 0)
            if iszero(or(iszero(d), shr(d, index))) {
                for {} 1 {} {
                    let v := mload(add(data, slot))
                    if iszero(v) { break }
                    if eq(shr(32, v), key) {
                        t := and(v, 0xffffffff)
                        break
                    }
                    slot := and(add(slot, 0x20), mask)
                }
            }
        }
        if (t == 0) t = _touch(st, table, index, d, key, slot); // also for a key outside the layout
        assembly ("memory-safe") {
            record := mload(add(t, 0x60))
        }
    }

    /// @notice Set the step's record at (table, index) (empty deletes). Nothing reaches the
    ///         root before `flush`.
    function set(StepState memory st, uint256 table, uint256 index, bytes memory record)
        internal
        pure
    {
        uint256[] memory slots = st.slots;
        uint256 d;
        uint256 key;
        uint256 slot;
        uint256 t;
        assembly ("memory-safe") {
            // as in `get`
            d := byte(table, DEPTHS)
            key := or(shl(64, table), index)
            let mask := shl(5, sub(mload(slots), 1))
            let data := add(slots, 0x20)
            slot := and(shr(123, mul(key, HASH_MULTIPLIER)), mask)
            // (no key outside the layout is in the table: it stays absent, t = 0)
            if iszero(or(iszero(d), shr(d, index))) {
                for {} 1 {} {
                    let v := mload(add(data, slot))
                    if iszero(v) { break }
                    if eq(shr(32, v), key) {
                        t := and(v, 0xffffffff)
                        break
                    }
                    slot := and(add(slot, 0x20), mask)
                }
            }
        }
        if (t == 0) t = _touch(st, table, index, d, key, slot); // also for a key outside the layout
        assembly ("memory-safe") {
            mstore(add(t, 0x60), record) // current
            mstore(add(t, 0xa0), 1) // written
        }
    }

    /// @notice Apply the step's changed records and return the post-state root; reverts
    ///         `WitnessNotConsumed` if the witness has entries left.
    /// @dev The scratch arrays (final leaves by position, the changed tables' keys sorted
    ///      by table then index, the multiproof's stack) are allocated once and reused by
    ///      every changed table.
    function flush(StepState memory st) internal pure returns (bytes32 postRoot) {
        if (st.cursor != st.end) revert WitnessNotConsumed();
        Touched[] memory touched = st.touched;
        uint256 count = st.count;
        uint256 changed; // bit t: table t has a changed key
        uint256 counts; // 16 bits per table: how many keys the step touched in it
        uint256 leaves; // `count` words: the final leaves by position
        assembly ("memory-safe") {
            leaves := mload(0x40)
            mstore(0x40, add(leaves, shl(5, count)))
            let tp := add(touched, 0x20)
            for { let i := 0 } lt(i, count) { i := add(i, 1) } {
                let t := mload(add(tp, shl(5, i)))
                let first := mload(add(t, 0x80))
                let leaf := first
                if mload(add(t, 0xa0)) {
                    // written: the leaf of the current record (_hashLeaf)
                    let r := mload(add(t, 0x60))
                    let n := mload(r)
                    leaf := 0
                    if n { leaf := keccak256(add(r, 0x20), n) }
                }
                mstore(add(leaves, shl(5, i)), leaf)
                let table := mload(t)
                changed := or(changed, shl(table, iszero(eq(leaf, first))))
                // `count` < 2^16: each touched key holds > 10 words of memory, and 2^16
                // times that would cost far more gas than a block has
                counts := add(counts, shl(shl(4, table), 1))
            }
        }
        if (changed == 0) return st.root;
        uint256 keys; // the changed tables' keys, `index << 32 | position`, by table then index
        uint256 starts; // 16 bits per table: where its keys start in `keys`
        uint256 stack; // `2 * count` words
        assembly ("memory-safe") {
            keys := mload(0x40)
            stack := add(keys, shl(5, count))
            mstore(0x40, add(stack, shl(6, count)))
            let at := 0
            for { let table := 0 } lt(table, TABLE_SLOTS) { table := add(table, 1) } {
                if and(shr(table, changed), 1) {
                    starts := or(starts, shl(shl(4, table), at))
                    at := add(at, and(shr(shl(4, table), counts), 0xffff))
                }
            }
            // one pass in first-touch order, insertion-sorting each key into its table's run
            let placed := 0 // 16 bits per table
            let tp := add(touched, 0x20)
            for { let i := 0 } lt(i, count) { i := add(i, 1) } {
                let t := mload(add(tp, shl(5, i)))
                let table := mload(t)
                if and(shr(table, changed), 1) {
                    let shift := shl(4, table)
                    let base := add(keys, shl(5, and(shr(shift, starts), 0xffff)))
                    let j := and(shr(shift, placed), 0xffff)
                    placed := add(placed, shl(shift, 1))
                    let w := or(shl(32, mload(add(t, 0x20))), i)
                    // after the last key (often), else at the first greater one (binary
                    // search), the greater ones moving up one
                    if j {
                        if lt(w, mload(add(base, shl(5, sub(j, 1))))) {
                            let lo := 0
                            for { let hi := sub(j, 1) } lt(lo, hi) {} {
                                let mid := shr(1, add(lo, hi))
                                switch lt(mload(add(base, shl(5, mid))), w)
                                case 1 { lo := add(mid, 1) }
                                default { hi := mid }
                            }
                            mcopy(add(base, shl(5, add(lo, 1))), add(base, shl(5, lo)), shl(5, sub(j, lo)))
                            j := lo
                        }
                    }
                    mstore(add(base, shl(5, j)), w)
                }
            }
        }
        bytes32[] memory roots = st.tableRoots;
        for (uint256 table = 0; table < TABLE_SLOTS; ++table) {
            if ((changed >> table) & 1 == 1) {
                uint256 shift = table << 4;
                roots[table] = _tableRootAfter(
                    st,
                    table,
                    leaves,
                    keys + (((starts >> shift) & 0xffff) << 5),
                    (counts >> shift) & 0xffff,
                    stack
                );
            }
        }
        st.root = _globalRoot(roots);
        return st.root;
    }

    // The touched-key index -----------------------------------------------------------------

    /// @dev The initial capacity for the entry list at `p` (its end at `end`): how many
    ///      entries it holds (counting at most MAX_INITIAL_CAPACITY, and stopping at
    ///      anything but a list), rounded up to a power of two, at least MIN_CAPACITY.
    function _initialCapacity(uint256 p, uint256 end) private pure returns (uint256 capacity) {
        assembly ("memory-safe") {
            let n := 0
            for {} and(lt(p, end), lt(n, MAX_INITIAL_CAPACITY)) {} {
                let b := byte(0, calldataload(p))
                if lt(b, 0xc0) { break }
                switch lt(b, 0xf8)
                case 1 { p := add(p, sub(b, 0xbf)) }
                default {
                    let k := sub(b, 0xf7)
                    p := add(add(p, add(k, 1)), shr(sub(256, shl(3, k)), calldataload(add(p, 1))))
                }
                n := add(n, 1)
            }
            capacity := MIN_CAPACITY
            for {} lt(capacity, n) {} { capacity := shl(1, capacity) }
        }
    }

    /// @dev Append the touched key `t` (a `Touched` pointer) whose key is `key` at the empty
    ///      byte offset `slot` of the hash table, growing when full.
    function _add(StepState memory st, uint256 slot, uint256 key, uint256 t) private pure {
        uint256 count = st.count;
        Touched[] memory touched = st.touched;
        if (count == touched.length) {
            _grow(st);
            touched = st.touched;
            slot = _emptySlot(st.slots, key);
        }
        uint256[] memory slots = st.slots;
        assembly ("memory-safe") {
            mstore(add(add(touched, 0x20), shl(5, count)), t)
            mstore(add(add(slots, 0x20), slot), or(shl(32, key), t))
        }
        st.count = count + 1;
    }

    /// @dev The byte offset of the empty slot where `key` (absent) goes in `slots`.
    function _emptySlot(uint256[] memory slots, uint256 key) private pure returns (uint256 slot) {
        assembly ("memory-safe") {
            let mask := shl(5, sub(mload(slots), 1))
            let data := add(slots, 0x20)
            slot := and(shr(123, mul(key, HASH_MULTIPLIER)), mask)
            for {} mload(add(data, slot)) {} { slot := and(add(slot, 0x20), mask) }
        }
    }

    /// @dev Double the touched list's capacity and rebuild the hash table at twice that.
    function _grow(StepState memory st) private pure {
        Touched[] memory old = st.touched;
        uint256 count = st.count;
        Touched[] memory touched = _allocTouched(2 * old.length);
        uint256[] memory slots = new uint256[](4 * old.length);
        assembly ("memory-safe") {
            mcopy(add(touched, 0x20), add(old, 0x20), shl(5, count))
        }
        for (uint256 i = 0; i < count; ++i) {
            uint256 t;
            uint256 key;
            assembly ("memory-safe") {
                t := mload(add(add(touched, 0x20), shl(5, i)))
                key := or(shl(64, mload(t)), mload(add(t, 0x20)))
            }
            uint256 slot = _emptySlot(slots, key);
            assembly ("memory-safe") {
                mstore(add(add(slots, 0x20), slot), or(shl(32, key), t))
            }
        }
        st.touched = touched;
        st.slots = slots;
    }

    /// @dev A memory `Touched[]` of length `capacity` whose elements are left unset (they
    ///      are written before they are read), instead of `new`'s zeroed structs.
    function _allocTouched(uint256 capacity) private pure returns (Touched[] memory touched) {
        assembly ("memory-safe") {
            touched := mload(0x40)
            mstore(touched, capacity)
            mstore(0x40, add(touched, shl(5, add(capacity, 1))))
        }
    }

    // Witness entries -----------------------------------------------------------------------

    /// @dev The first touch of (table, index) (of depth d, packed `key`, absent from the hash
    ///      table, whose empty byte offset `slot` is): consume the next witness entry, copy
    ///      its record to memory, verify it and its siblings against the key's pre-state
    ///      table root, and append the key. Returns its `Touched` (a memory pointer).
    ///
    ///      Verification goes through the table's read cache: the table's first touch climbs
    ///      from the leaf through all d siblings (read from calldata where the bitmap has a
    ///      bit, zero hashes elsewhere), which must end exactly where the entry's siblings
    ///      do, to the table root; a later one climbs only to `top`, the height where its
    ///      path meets the cached path of the table's last touched key, and compares with
    ///      the cached node there (its siblings above `top` are never read, now or at
    ///      `flush`: see `_tableRootAfter`). The path's nodes below `top` replace the cache's.
    function _touch(StepState memory st, uint256 table, uint256 index, uint256 d, uint256 key, uint256 slot)
        private
        pure
        returns (uint256 t)
    {
        // a key outside the layout (no witness can prove it; the STF never makes one)
        if (d == 0 || index >> d != 0) revert BadWitness(table, index);
        if (!st.rootsOk) revert BadWitness(table, index);
        (uint256 recordOffset, uint256 recordLength, uint256 proof) = _entry(st, table, index);
        bytes32 leaf;
        (t, leaf) = _newTouched(table, index, recordOffset, recordLength, proof);
        if (!_verify(st, table, index, d, leaf, proof)) revert BadWitness(table, index);
        _add(st, slot, key, t);
    }

    /// @dev Whether `leaf` at (table, index), with the siblings `proof` points at, is in the
    ///      pre-state, through the table's read cache (`_touch`).
    function _verify(StepState memory st, uint256 table, uint256 index, uint256 d, bytes32 leaf, uint256 proof)
        private
        pure
        returns (bool)
    {
        uint256[] memory caches = st.caches;
        uint256 cache;
        assembly ("memory-safe") {
            cache := mload(add(caches, shl(5, add(table, 1)))) // table < 16: it has a depth
        }
        if (cache == 0) {
            assembly ("memory-safe") {
                cache := mload(0x40)
                mstore(0x40, add(cache, shl(5, add(d, 2))))
                mstore(add(caches, shl(5, add(table, 1))), cache)
            }
            return _verifyPath(st.zeros, cache, leaf, index, d, proof, st.tableRoots[table], true);
        }
        uint256 last;
        assembly ("memory-safe") {
            last := mload(cache)
        }
        uint256 top = _bitLength(index ^ last);
        bytes32 meet;
        assembly ("memory-safe") {
            meet := mload(add(cache, shl(5, add(top, 1))))
        }
        return _verifyPath(st.zeros, cache, leaf, index, top, proof, meet, false);
    }

    /// @dev A new `Touched` for a first touch of (table, index) whose pre-state record is
    ///      at [recordOffset, + recordLength) in calldata (copied to memory) and siblings at
    ///      `proof`: (table, index, record, record, leaf, false, proof). Returns it (a memory
    ///      pointer) and the record's leaf hash.
    function _newTouched(uint256 table, uint256 index, uint256 recordOffset, uint256 recordLength, uint256 proof)
        private
        pure
        returns (uint256 t, bytes32 leaf)
    {
        assembly ("memory-safe") {
            let record := mload(0x40)
            mstore(record, recordLength)
            let data := add(record, 0x20)
            // zero the last word first so the padding after the record is clean
            mstore(add(data, and(recordLength, not(31))), 0)
            calldatacopy(data, recordOffset, recordLength)
            t := add(data, and(add(recordLength, 31), not(31)))
            if recordLength { leaf := keccak256(data, recordLength) }
            mstore(t, table)
            mstore(add(t, 0x20), index)
            mstore(add(t, 0x40), record)
            mstore(add(t, 0x60), record)
            mstore(add(t, 0x80), leaf)
            mstore(add(t, 0xa0), 0)
            mstore(add(t, 0xc0), proof)
            mstore(0x40, add(t, 0xe0))
        }
    }

    /// @dev Climb from `leaf` at `index` through its siblings at heights below `top` (read
    ///      from calldata where the bitmap has a bit, zero hashes elsewhere; `proof` packs
    ///      the bitmap and the siblings' span, `_entry`), writing the path's nodes below
    ///      `top` and the node reached at `top` into the cache, and compare the latter with
    ///      `expected`; the siblings read must end exactly where the span does (`exact`) or
    ///      within it.
    function _verifyPath(
        bytes memory zeros,
        uint256 cache,
        bytes32 leaf,
        uint256 index,
        uint256 top,
        uint256 proof,
        bytes32 expected,
        bool exact
    ) private pure returns (bool ok) {
        assembly ("memory-safe") {
            // `w` holds the bitmap's bits still to go in its low 64 bits and the index's at
            // 128 (both shift down one per height)
            mstore(cache, index)
            let node := leaf
            let p := and(proof, MASK64)
            let w := or(shr(128, proof), shl(128, index))
            let path := add(cache, 0x20)
            let zd := sub(add(zeros, 0x20), path) // ZERO_HASHES[h] at path[h] + zd
            let pathEnd := add(path, shl(5, top))
            // unrolled by four: top % 4 heights first
            for { let first := add(path, shl(5, and(top, 3))) } lt(path, first) { path := add(path, 0x20) } {
                mstore(path, node)
                let s := mload(add(path, zd))
                if and(w, 1) {
                    s := calldataload(p)
                    p := add(p, 0x20)
                }
                let o := and(shr(123, w), 0x20)
                w := shr(1, w)
                mstore(o, node)
                mstore(xor(o, 0x20), s)
                node := keccak256(0x00, 0x40)
            }
            for {} lt(path, pathEnd) { path := add(path, 0x80) } {
                {
                    mstore(path, node)
                    let s := mload(add(path, zd))
                    if and(w, 1) {
                        s := calldataload(p)
                        p := add(p, 0x20)
                    }
                    let o := and(shr(123, w), 0x20)
                    w := shr(1, w)
                    mstore(o, node)
                    mstore(xor(o, 0x20), s)
                    node := keccak256(0x00, 0x40)
                }
                {
                    let next := add(path, 0x20)
                    mstore(next, node)
                    let s := mload(add(next, zd))
                    if and(w, 1) {
                        s := calldataload(p)
                        p := add(p, 0x20)
                    }
                    let o := and(shr(123, w), 0x20)
                    w := shr(1, w)
                    mstore(o, node)
                    mstore(xor(o, 0x20), s)
                    node := keccak256(0x00, 0x40)
                }
                {
                    let next := add(path, 0x40)
                    mstore(next, node)
                    let s := mload(add(next, zd))
                    if and(w, 1) {
                        s := calldataload(p)
                        p := add(p, 0x20)
                    }
                    let o := and(shr(123, w), 0x20)
                    w := shr(1, w)
                    mstore(o, node)
                    mstore(xor(o, 0x20), s)
                    node := keccak256(0x00, 0x40)
                }
                let next := add(path, 0x60)
                mstore(next, node)
                let s := mload(add(next, zd))
                if and(w, 1) {
                    s := calldataload(p)
                    p := add(p, 0x20)
                }
                let o := and(shr(123, w), 0x20)
                w := shr(1, w)
                mstore(o, node)
                mstore(xor(o, 0x20), s)
                node := keccak256(0x00, 0x40)
            }
            mstore(path, node) // the table root (first touch), or the node already there
            let siblingsEnd := and(shr(64, proof), MASK64)
            ok := and(eq(node, expected), or(eq(p, siblingsEnd), and(iszero(exact), lt(p, siblingsEnd))))
        }
    }

    /// @dev Parse the next witness entry, which must name (table, index), and advance the
    ///      cursor past it. Returns its record's calldata span and its `proof`: the bitmap's
    ///      low 64 bits (no table is deeper), then the calldata offsets where its siblings
    ///      end and start, packed as `bitmap << 128 | siblingsEnd << 64 | siblings`.
    function _entry(StepState memory st, uint256 table, uint256 index)
        private
        pure
        returns (uint256 recordOffset, uint256 recordLength, uint256 proof)
    {
        uint256 p = st.cursor;
        uint256 end = st.end;
        bool bad;
        assembly ("memory-safe") {
            // the entry's list header (as `_list`): at p < end, a list, within end
            let b := byte(0, calldataload(p))
            bad := or(iszero(lt(p, end)), lt(b, 0xc0))
            let q := add(p, 1)
            let limit := add(q, sub(b, 0xc0))
            if gt(b, 0xf7) {
                let n := sub(b, 0xf7)
                q := add(q, n)
                limit := add(q, shr(sub(256, shl(3, n)), calldataload(sub(q, n))))
            }
            bad := or(bad, gt(limit, end))
            // Then five string items, each parsed leniently as one at q (< limit): a byte
            // below 0x80 is itself; 0x80 + len; 0xb7 + n then len in n bytes; anything else
            // (a list) is bad; the payload [off, off + len) must end within limit (which
            // also rejects q >= limit). The integers are at most 32 bytes (0 when empty).
            // table
            b := byte(0, calldataload(q))
            let off := add(q, 1)
            let len := sub(b, 0x80)
            if lt(b, 0x80) {
                off := q
                len := 1
            }
            if gt(b, 0xb7) {
                let n := sub(b, 0xb7)
                len := shr(sub(256, shl(3, n)), calldataload(off))
                off := add(off, n)
                bad := or(bad, gt(b, 0xbf))
            }
            q := add(off, len)
            bad := or(bad, or(gt(q, limit), gt(len, 32)))
            bad := or(bad, iszero(eq(shr(sub(256, shl(3, len)), calldataload(off)), table)))
            // index
            b := byte(0, calldataload(q))
            off := add(q, 1)
            len := sub(b, 0x80)
            if lt(b, 0x80) {
                off := q
                len := 1
            }
            if gt(b, 0xb7) {
                let n := sub(b, 0xb7)
                len := shr(sub(256, shl(3, n)), calldataload(off))
                off := add(off, n)
                bad := or(bad, gt(b, 0xbf))
            }
            q := add(off, len)
            bad := or(bad, or(gt(q, limit), gt(len, 32)))
            bad := or(bad, iszero(eq(shr(sub(256, shl(3, len)), calldataload(off)), index)))
            // record
            b := byte(0, calldataload(q))
            recordOffset := add(q, 1)
            recordLength := sub(b, 0x80)
            if lt(b, 0x80) {
                recordOffset := q
                recordLength := 1
            }
            if gt(b, 0xb7) {
                let n := sub(b, 0xb7)
                recordLength := shr(sub(256, shl(3, n)), calldataload(recordOffset))
                recordOffset := add(recordOffset, n)
                bad := or(bad, gt(b, 0xbf))
            }
            q := add(recordOffset, recordLength)
            bad := or(bad, gt(q, limit))
            // bitmap
            b := byte(0, calldataload(q))
            off := add(q, 1)
            len := sub(b, 0x80)
            if lt(b, 0x80) {
                off := q
                len := 1
            }
            if gt(b, 0xb7) {
                let n := sub(b, 0xb7)
                len := shr(sub(256, shl(3, n)), calldataload(off))
                off := add(off, n)
                bad := or(bad, gt(b, 0xbf))
            }
            q := add(off, len)
            bad := or(bad, or(gt(q, limit), gt(len, 32)))
            proof := shl(128, and(shr(sub(256, shl(3, len)), calldataload(off)), MASK64))
            // siblings: must end exactly at the entry's end
            b := byte(0, calldataload(q))
            off := add(q, 1)
            len := sub(b, 0x80)
            if lt(b, 0x80) {
                off := q
                len := 1
            }
            if gt(b, 0xb7) {
                let n := sub(b, 0xb7)
                len := shr(sub(256, shl(3, n)), calldataload(off))
                off := add(off, n)
                bad := or(bad, gt(b, 0xbf))
            }
            bad := or(bad, iszero(eq(add(off, len), limit)))
            proof := or(proof, or(shl(64, limit), off))
            end := limit
        }
        if (bad) revert BadWitness(table, index);
        st.cursor = end;
    }

    /// @dev The list header at p (< end), lenient: payload offset and length, within end.
    function _list(uint256 p, uint256 end) private pure returns (bool ok, uint256 payload, uint256 length) {
        assembly ("memory-safe") {
            if lt(p, end) {
                let b := byte(0, calldataload(p))
                if iszero(lt(b, 0xc0)) {
                    switch lt(b, 0xf8)
                    case 1 {
                        payload := add(p, 1)
                        length := sub(b, 0xc0)
                    }
                    default {
                        let n := sub(b, 0xf7)
                        length := shr(sub(256, shl(3, n)), calldataload(add(p, 1)))
                        payload := add(add(p, 1), n)
                    }
                    ok := iszero(gt(add(payload, length), end))
                }
            }
        }
    }

    // Merkle paths --------------------------------------------------------------------------

    /// @dev The number of significant bits of `x` (< 2^64): the height at which the paths
    ///      of two indices whose xor is `x` meet.
    function _bitLength(uint256 x) private pure returns (uint256 n) {
        assembly ("memory-safe") {
            // floor(log2(x)) by halving down to a byte, then a 32-entry lookup (Solady's
            // `log2`), plus one unless x is zero
            n := shl(5, gt(x, 0xffffffff))
            n := or(n, shl(4, gt(shr(n, x), 0xffff)))
            n := or(n, shl(3, gt(shr(n, x), 0xff)))
            n := or(
                n,
                byte(
                    and(0x1f, shr(shr(n, x), 0x8421084210842108cc6318c6db6d54be)),
                    0x0706060506020504060203020504030106050205030304010505030400000000
                )
            )
            n := add(n, iszero(iszero(x)))
        }
    }

    /// @dev merkle.py `root_after_updates` for one table: the table's root once every key the
    ///      step touched in it holds its final leaf (`leaves`, a memory pointer to the final
    ///      leaves by position in `touched`). `keys` points at the table's `n` keys, as
    ///      `index << 32 | position` sorted by index; `stack` is scratch (`2 * count` words).
    ///
    ///      The table's keys are sorted by index. Two consecutive keys' paths meet at height
    ///      m = bit length of their xor (their lowest common ancestor), and no two
    ///      consecutive meeting heights are equal, so one pass left to right with a stack
    ///      builds the tree of listed nodes: each key climbs alone until the lower of its
    ///      meeting heights with its neighbours (less one); if that is the left one it
    ///      hashes with the subtree on top of the stack (its left sibling) and keeps
    ///      climbing, else it waits on the stack for its right sibling. A node climbing
    ///      alone at height h hashes with the pre-state sibling at h of one key of its
    ///      subtree (the subtree beside it holds no touched key, so that sibling is current).
    ///
    ///      Which key: the one of the subtree touched FIRST (smallest position in
    ///      `touched`). This is what makes the read cache sound: a key K is verified
    ///      (`_touch`) only below the height where its path meets that of L, the table's key
    ///      touched just before it (all of K's siblings below that height are then proven by
    ///      the cached pre-state node it reaches; the ones above are never checked). If K is
    ///      the first-touched key of a listed node's subtree at height h, then L (touched
    ///      earlier) is outside that subtree, so K and L meet above h and K's sibling at h
    ///      was verified; the table's first touched key was verified all the way up. So
    ///      every sibling used here is a verified pre-state node, whatever the witness holds
    ///      above a key's meeting height. Each node carries the cursor into its first
    ///      key's siblings (bitmap still to go, calldata offset); when two nodes merge at
    ///      height h + 1, the cursor of the earlier-touched one is kept and moved past h
    ///      (its sibling there is the other node).
    function _tableRootAfter(
        StepState memory st,
        uint256 table,
        uint256 leaves,
        uint256 keys,
        uint256 n,
        uint256 stack
    ) private pure returns (bytes32 root) {
        // each key's meeting height with the next one, into bits 192.. of its word
        for (uint256 k = 1; k < n; ++k) {
            uint256 a;
            uint256 b;
            assembly ("memory-safe") {
                a := mload(add(keys, shl(5, sub(k, 1))))
                b := mload(add(keys, shl(5, k)))
            }
            uint256 m = _bitLength((a ^ b) >> 32);
            assembly ("memory-safe") {
                mstore(add(keys, shl(5, sub(k, 1))), or(a, shl(192, m)))
            }
        }
        bytes memory zeros = st.zeros;
        Touched[] memory touched = st.touched;
        assembly ("memory-safe") {
            // Climb `node` (of a subtree holding key `index`) from height h to `target`
            // with the siblings at `cursor` (`position << 128 | bitmap << 64 | offset`: the
            // key whose siblings these are; zero hashes at zs). As in `_touch`, `w` holds
            // the bitmap's bits still to go in its low 64 bits and the index's at 128.
            function climb(node, h, target, index, cursor, zs) -> node_, cursor_ {
                node_ := node
                cursor_ := cursor
                if lt(h, target) {
                    let w := or(and(shr(64, cursor), MASK64), shl(128, shr(h, index)))
                    let p := and(cursor, MASK64)
                    let z := add(zs, shl(5, h))
                    let zEnd := add(zs, shl(5, target))
                    // unrolled by four: (target - h) % 4 heights first
                    for { let first := add(z, shl(5, and(sub(target, h), 3))) } lt(z, first) { z := add(z, 0x20) } {
                        let s := mload(z)
                        if and(w, 1) {
                            s := calldataload(p)
                            p := add(p, 0x20)
                        }
                        let o := and(shr(123, w), 0x20)
                        w := shr(1, w)
                        mstore(o, node_)
                        mstore(xor(o, 0x20), s)
                        node_ := keccak256(0x00, 0x40)
                    }
                    for {} lt(z, zEnd) { z := add(z, 0x80) } {
                        {
                            let s := mload(z)
                            if and(w, 1) {
                                s := calldataload(p)
                                p := add(p, 0x20)
                            }
                            let o := and(shr(123, w), 0x20)
                            w := shr(1, w)
                            mstore(o, node_)
                            mstore(xor(o, 0x20), s)
                            node_ := keccak256(0x00, 0x40)
                        }
                        {
                            let s := mload(add(z, 0x20))
                            if and(w, 1) {
                                s := calldataload(p)
                                p := add(p, 0x20)
                            }
                            let o := and(shr(123, w), 0x20)
                            w := shr(1, w)
                            mstore(o, node_)
                            mstore(xor(o, 0x20), s)
                            node_ := keccak256(0x00, 0x40)
                        }
                        {
                            let s := mload(add(z, 0x40))
                            if and(w, 1) {
                                s := calldataload(p)
                                p := add(p, 0x20)
                            }
                            let o := and(shr(123, w), 0x20)
                            w := shr(1, w)
                            mstore(o, node_)
                            mstore(xor(o, 0x20), s)
                            node_ := keccak256(0x00, 0x40)
                        }
                        let s := mload(add(z, 0x60))
                        if and(w, 1) {
                            s := calldataload(p)
                            p := add(p, 0x20)
                        }
                        let o := and(shr(123, w), 0x20)
                        w := shr(1, w)
                        mstore(o, node_)
                        mstore(xor(o, 0x20), s)
                        node_ := keccak256(0x00, 0x40)
                    }
                    cursor_ := or(shl(128, shr(128, cursor)), or(shl(64, and(w, MASK64)), p))
                }
            }
            // The cursor moved past one height (whose sibling is a listed node).
            function skip(cursor) -> next {
                next := add(cursor, shl(5, and(shr(64, cursor), 1)))
                let bitmap := and(shr(64, next), MASK64)
                next := or(shl(128, shr(128, next)), or(shl(64, shr(1, bitmap)), and(next, MASK64)))
            }
            function tableRoot(tp, op, lp, zs, base, count, never) -> node {
                // stack entries: node, then `meets << 192 | cursor` where
                // `meets` is the height of the node's parent (the node waits at meets - 1)
                let top := base
                for { let k := 0 } lt(k, count) { k := add(k, 1) } {
                    let word := mload(add(op, shl(5, k)))
                    let cursor := and(word, 0xffffffff) // the key's position
                    let index := and(shr(32, word), MASK64)
                    let right := shr(192, word)
                    if iszero(right) { right := never } // the last key
                    node := mload(add(lp, shl(5, cursor)))
                    // Touched.proof: bitmap << 128 | end << 64 | offset
                    let proof := mload(add(mload(add(tp, shl(5, cursor))), 0xc0))
                    cursor := or(shl(128, cursor), or(shl(64, shr(128, proof)), and(proof, MASK64)))
                    let h := 0
                    for {} 1 {} {
                        let left := never
                        if gt(top, base) { left := shr(192, mload(sub(top, 0x20))) }
                        switch lt(left, right)
                        case 1 {
                            node, cursor := climb(node, h, sub(left, 1), index, cursor, zs)
                            // the stack's top is the left sibling: merge, keep the earlier cursor
                            top := sub(top, 0x40)
                            let meta := mload(add(top, 0x20))
                            mstore(0x00, mload(top))
                            mstore(0x20, node)
                            node := keccak256(0x00, 0x40)
                            meta := and(meta, 0xffffffffffffffffffffffffffffffffffffffffffffffff)
                            if lt(shr(128, meta), shr(128, cursor)) { cursor := meta }
                            cursor := skip(cursor)
                            h := left
                        }
                        default {
                            node, cursor := climb(node, h, sub(right, 1), index, cursor, zs)
                            if eq(right, never) { break } // the last key, nothing left: the root
                            mstore(top, node)
                            mstore(add(top, 0x20), or(shl(192, right), cursor))
                            top := add(top, 0x40)
                            break
                        }
                    }
                }
            }
            root := tableRoot(
                add(touched, 0x20),
                keys,
                leaves,
                add(zeros, 0x20),
                stack,
                n,
                add(byte(table, DEPTHS), 1) // a meeting height no two keys have
            )
        }
    }

    /// @dev The state root over the 16 table roots (the global tree, depth 4), hashed in
    ///      the scratch memory past the free pointer (nothing allocated).
    function _globalRoot(bytes32[] memory roots) private pure returns (bytes32 root) {
        assembly ("memory-safe") {
            let level := mload(0x40)
            let src := add(roots, 0x20)
            for { let width := 8 } width { width := shr(1, width) } {
                for { let i := 0 } lt(i, width) { i := add(i, 1) } {
                    mstore(0x00, mload(add(src, shl(6, i))))
                    mstore(0x20, mload(add(src, add(shl(6, i), 0x20))))
                    mstore(add(level, shl(5, i)), keccak256(0x00, 0x40))
                }
                src := level
            }
            root := mload(level)
        }
    }
}
