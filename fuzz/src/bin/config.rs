//! AFL target: `rmq_registrar::fuzzing::config`.
fn main() {
    afl::fuzz!(|data: &[u8]| rmq_registrar::fuzzing::config(data));
}
