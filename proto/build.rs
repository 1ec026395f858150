//! Generates the tonic/prost code for `proto/berth.proto` with protox, so no
//! system `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/berth.proto");
    let descriptors = protox::compile(["berth.proto"], ["proto"])?;
    // Every method's path (`/berth.v1.Cli/CreateDeployment`), for the controller's
    // gRPC metrics: a label only ever names one of these.
    let mut paths = Vec::new();
    for file in &descriptors.file {
        let package = file.package.clone().unwrap_or_default();
        for service in &file.service {
            for method in &service.method {
                paths.push(format!(
                    "/{package}.{}/{}",
                    service.name.clone().unwrap_or_default(),
                    method.name.clone().unwrap_or_default()
                ));
            }
        }
    }
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?).join("method_paths.rs");
    std::fs::write(out, format!("&{paths:?}"))?;
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
