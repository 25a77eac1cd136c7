//! Runs `examples/policy.rs`: the allowed RRSIG is signed and verified, every forbidden request is refused by
//! the nodes' policy with its rule, and the example says so in its exit status.

#[path = "common/example.rs"]
mod example;

#[test]
fn the_policy_example_signs_the_allowed_rrsig_and_refuses_the_rest() {
    let out = std::process::Command::new(example::example_binary("policy"))
        .output()
        .expect("run the policy example");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("(allowed)") && text.contains("signed (verified by ed25519-dalek)"),
        "{text}"
    );
    for rule in [
        "zone-not-allowed",
        "expiration-too-far",
        "inception-too-old",
        "type-not-for-role",
        "key-tag-mismatch",
        "malformed-data",
    ] {
        assert!(text.contains(&format!("refused: {rule}")), "{rule}: {text}");
    }
    assert!(!text.contains("NOT AS THE POLICY SAYS"), "{text}");
}
