//! AFL target: `rmq_registrar::fuzzing::address`.
fn main() {
    afl::fuzz!(|data: &[u8]| rmq_registrar::fuzzing::address(data));
}
