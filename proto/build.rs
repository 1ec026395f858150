//! Generates the tonic/prost code for `proto/berth.proto` with protox, so no
//! system `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/berth.proto");
    let descriptors = protox::compile(["berth.proto"], ["proto"])?;
    // A secret's value is in SetSecretRequest (a webhook's URL and
    // signing secret in AddWebhookRequest and CreatedWebhookReply, a git
    // credential in FetchRequest): their
    // Debug is written by hand in lib.rs, leaving the values out.
    tonic_prost_build::configure()
        .skip_debug([
            ".berth.v1.SetSecretRequest",
            ".berth.v1.SecretValue",
            ".berth.v1.AddWebhookRequest",
            ".berth.v1.CreatedWebhookReply",
            ".berth.v1.FetchRequest",
            ".berth.v1.CreatedHookReply",
        ])
        .compile_fds(descriptors)?;
    Ok(())
}
