//! AFL target: `rmq_registrar::fuzzing::fastjson`.
fn main() {
    afl::fuzz!(|data: &[u8]| rmq_registrar::fuzzing::fastjson(data));
}
