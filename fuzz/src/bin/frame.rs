//! AFL target: `rmq_registrar::fuzzing::frame`.
fn main() {
    afl::fuzz!(|data: &[u8]| rmq_registrar::fuzzing::frame(data));
}
