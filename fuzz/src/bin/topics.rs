//! AFL target: `rmq_registrar::fuzzing::topics`.
fn main() {
    afl::fuzz!(|data: &[u8]| rmq_registrar::fuzzing::topics(data));
}
