use super::*;

const NEW_HEX: &str = "4771d09578c7c6a65299e110b3ee1c0a2592f5ea2618d23e4ffe7a4cab1ce5de";

fn new_digest() -> Digest {
    Digest::from_sha256_hex(NEW_HEX).unwrap()
}

/// Returns the byte range of `needle`, which must occur exactly once in `text`.
fn span(text: &str, needle: &str) -> Range<usize> {
    assert_eq!(text.matches(needle).count(), 1, "{needle:?} must occur exactly once");
    let start = text.find(needle).unwrap();
    start..start + needle.len()
}

fn found(text: &str, needle: &str, line: usize) -> Found {
    Found { range: span(text, needle), text: needle.to_owned(), line }
}

fn pin_all(text: &str, scan: &Scan) -> String {
    let replacements: Vec<(Range<usize>, String)> = scan
        .images
        .iter()
        .map(|image| (image.range.clone(), pinned_text(&image.text, &new_digest())))
        .collect();
    rewrite(text, &replacements).unwrap()
}

fn assert_all_parse(scan: &Scan) {
    for image in &scan.images {
        assert!(Reference::parse(&image.text).is_ok(), "{:?} does not parse", image.text);
    }
}

fn skipped_lines(scan: &Scan) -> Vec<usize> {
    scan.skipped.iter().map(|skipped| skipped.line).collect()
}

const DEPLOYMENT: &str = r#"# Web front end. Each image: line below is pinned by `signet pin`.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    baseimage: alpine
spec:
  replicas: 2
  template:
    spec:
      initContainers:
        - name: migrate
          image: registry.example.com:5000/team/migrate:v4
          command: ["migrate", "up"]
      containers:
        - name: web
          image: "nginx:1.13.9"
          imagePullPolicy: IfNotPresent
          ports:
            - containerPort: 80
        -   image: 'team/log-shipper:2.0'   # ships logs to the collector
            name: log-shipper
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-notes
data:
  # image: commented-out:1
  readme: |
    image: not-a-container:1
    The line above is text inside a block scalar.
"#;

#[test]
fn deployment_containers_found() {
    let scan = scan(FileKind::Yaml, DEPLOYMENT);

    assert_eq!(
        scan.images,
        vec![
            found(DEPLOYMENT, "registry.example.com:5000/team/migrate:v4", 14),
            found(DEPLOYMENT, "nginx:1.13.9", 18),
            found(DEPLOYMENT, "team/log-shipper:2.0", 22),
        ]
    );
    assert_eq!(scan.skipped, vec![]);
    assert_all_parse(&scan);
    assert_eq!(Reference::parse(&scan.images[1].text).unwrap().gun.as_str(), "docker.io/library/nginx");
}

#[test]
fn deployment_rewritten_byte_for_byte() {
    let expected = r#"# Web front end. Each image: line below is pinned by `signet pin`.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    baseimage: alpine
spec:
  replicas: 2
  template:
    spec:
      initContainers:
        - name: migrate
          image: registry.example.com:5000/team/migrate:v4@sha256:4771d09578c7c6a65299e110b3ee1c0a2592f5ea2618d23e4ffe7a4cab1ce5de
          command: ["migrate", "up"]
      containers:
        - name: web
          image: "nginx:1.13.9@sha256:4771d09578c7c6a65299e110b3ee1c0a2592f5ea2618d23e4ffe7a4cab1ce5de"
          imagePullPolicy: IfNotPresent
          ports:
            - containerPort: 80
        -   image: 'team/log-shipper:2.0@sha256:4771d09578c7c6a65299e110b3ee1c0a2592f5ea2618d23e4ffe7a4cab1ce5de'   # ships logs to the collector
            name: log-shipper
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-notes
data:
  # image: commented-out:1
  readme: |
    image: not-a-container:1
    The line above is text inside a block scalar.
"#;

    let scan = scan(FileKind::Yaml, DEPLOYMENT);

    assert_eq!(pin_all(DEPLOYMENT, &scan), expected);
}

const COMPOSE: &str = r#"services:
  db:
    image: postgres:16.2   # primary store
    environment:
      POSTGRES_PASSWORD: example
  api:
    image: "registry.example.com/team/api:${TAG}"
    build: ./api
  cache:
    image: redis:7@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
  proxy:
    image: &proxy traefik:v3.0
  proxy-canary:
    image: *proxy
  worker:
    image: ${REGISTRY:-docker.io}/team/worker
"#;

#[test]
fn compose_services_found_and_variables_skipped() {
    let scan = scan(FileKind::Yaml, COMPOSE);

    let redis = "redis:7@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    assert_eq!(scan.images, vec![found(COMPOSE, "postgres:16.2", 3), found(COMPOSE, redis, 10)]);
    assert!(!scan.images[0].is_pinned());
    assert!(scan.images[1].is_pinned());
    assert_all_parse(&scan);

    assert_eq!(skipped_lines(&scan), vec![7, 12, 14, 16]);
    assert_eq!(scan.skipped[0].text, "registry.example.com/team/api:${TAG}");
    assert!(scan.skipped[0].reason.contains("variable"), "{}", scan.skipped[0].reason);
    assert_eq!(scan.skipped[1].text, "&proxy traefik:v3.0");
    assert!(scan.skipped[1].reason.contains("anchor"), "{}", scan.skipped[1].reason);
    assert_eq!(scan.skipped[2].text, "*proxy");
    assert!(scan.skipped[2].reason.contains("alias"), "{}", scan.skipped[2].reason);
    assert_eq!(scan.skipped[3].text, "${REGISTRY:-docker.io}/team/worker");
    assert!(scan.skipped[3].reason.contains("variable"), "{}", scan.skipped[3].reason);
}

#[test]
fn compose_rewritten_byte_for_byte() {
    let expected = r#"services:
  db:
    image: postgres:16.2@sha256:4771d09578c7c6a65299e110b3ee1c0a2592f5ea2618d23e4ffe7a4cab1ce5de   # primary store
    environment:
      POSTGRES_PASSWORD: example
  api:
    image: "registry.example.com/team/api:${TAG}"
    build: ./api
  cache:
    image: redis:7@sha256:4771d09578c7c6a65299e110b3ee1c0a2592f5ea2618d23e4ffe7a4cab1ce5de
  proxy:
    image: &proxy traefik:v3.0
  proxy-canary:
    image: *proxy
  worker:
    image: ${REGISTRY:-docker.io}/team/worker
"#;

    let scan = scan(FileKind::Yaml, COMPOSE);

    assert_eq!(pin_all(COMPOSE, &scan), expected);
}

const DOCKERFILE: &str = r#"# syntax=docker/dockerfile:1
ARG BASE_REGISTRY=docker.io

FROM --platform=$BUILDPLATFORM golang:1.22-alpine AS Builder
WORKDIR /src
COPY . .
RUN go build -o /out/signet ./client

from builder as test
RUN go test ./...

FROM ${BASE_REGISTRY}/library/alpine:3.19 AS runtime-base

FROM scratch AS export
COPY --from=builder /out/signet /

  FROM \
    gcr.io/distroless/static-debian12:nonroot
COPY --from=Builder /out/signet /usr/local/bin/signet
ENTRYPOINT ["/usr/local/bin/signet"]
"#;

#[test]
fn dockerfile_stages_found() {
    let scan = scan(FileKind::Dockerfile, DOCKERFILE);

    assert_eq!(
        scan.images,
        vec![
            found(DOCKERFILE, "golang:1.22-alpine", 4),
            found(DOCKERFILE, "gcr.io/distroless/static-debian12:nonroot", 18),
        ]
    );
    assert_all_parse(&scan);

    assert_eq!(skipped_lines(&scan), vec![12]);
    assert_eq!(scan.skipped[0].text, "${BASE_REGISTRY}/library/alpine:3.19");
    assert!(scan.skipped[0].reason.contains("variable"), "{}", scan.skipped[0].reason);
}

#[test]
fn dockerfile_rewritten_byte_for_byte() {
    let expected = r#"# syntax=docker/dockerfile:1
ARG BASE_REGISTRY=docker.io

FROM --platform=$BUILDPLATFORM golang:1.22-alpine@sha256:4771d09578c7c6a65299e110b3ee1c0a2592f5ea2618d23e4ffe7a4cab1ce5de AS Builder
WORKDIR /src
COPY . .
RUN go build -o /out/signet ./client

from builder as test
RUN go test ./...

FROM ${BASE_REGISTRY}/library/alpine:3.19 AS runtime-base

FROM scratch AS export
COPY --from=builder /out/signet /

  FROM \
    gcr.io/distroless/static-debian12:nonroot@sha256:4771d09578c7c6a65299e110b3ee1c0a2592f5ea2618d23e4ffe7a4cab1ce5de
COPY --from=Builder /out/signet /usr/local/bin/signet
ENTRYPOINT ["/usr/local/bin/signet"]
"#;

    let scan = scan(FileKind::Dockerfile, DOCKERFILE);

    assert_eq!(pin_all(DOCKERFILE, &scan), expected);
}

#[test]
fn crlf_line_endings_kept() {
    let yaml = "kind: Pod\r\nspec:\r\n  containers:\r\n    - image: nginx:1.13.9 # web\r\n      name: web\r\n";
    let yaml_scan = scan(FileKind::Yaml, yaml);
    assert_eq!(yaml_scan.images, vec![Found { range: 46..58, text: "nginx:1.13.9".to_owned(), line: 4 }]);
    assert_eq!(
        pin_all(yaml, &yaml_scan),
        "kind: Pod\r\nspec:\r\n  containers:\r\n    - image: nginx:1.13.9@sha256:4771d09578c7c6a65299e110b3ee1c0a2592f5ea2618d23e4ffe7a4cab1ce5de # web\r\n      name: web\r\n"
    );

    let quoted = "image: \"alpine:3.19\"\r\n";
    let quoted_scan = scan(FileKind::Yaml, quoted);
    assert_eq!(quoted_scan.images, vec![Found { range: 8..19, text: "alpine:3.19".to_owned(), line: 1 }]);

    let dockerfile = "FROM --platform=linux/amd64 \\\r\n  alpine:3.19 AS base\r\nRUN true\r\n";
    let dockerfile_scan = scan(FileKind::Dockerfile, dockerfile);
    assert_eq!(dockerfile_scan.images, vec![Found { range: 33..44, text: "alpine:3.19".to_owned(), line: 2 }]);
    assert_eq!(
        pin_all(dockerfile, &dockerfile_scan),
        "FROM --platform=linux/amd64 \\\r\n  alpine:3.19@sha256:4771d09578c7c6a65299e110b3ee1c0a2592f5ea2618d23e4ffe7a4cab1ce5de AS base\r\nRUN true\r\n"
    );
}

#[test]
fn yaml_block_scalar_contents_ignored() {
    let text = "spec:\n  image: |\n    nginx:1.13.9\n  notes: >-\n    image: inside-folded-text:1\n\n    image: still-text:1\n  sidecar:\n    image: alpine:3.19\n  steps:\n    - |\n      image: step-text:1\n    - image: busybox:1.36\n";

    let scan = scan(FileKind::Yaml, text);

    assert_eq!(scan.images, vec![found(text, "alpine:3.19", 9), found(text, "busybox:1.36", 13)]);
    assert_eq!(skipped_lines(&scan), vec![2]);
    assert_eq!(scan.skipped[0].text, "|");
    assert!(scan.skipped[0].reason.contains("block scalar"), "{}", scan.skipped[0].reason);
}

#[test]
fn yaml_unpinnable_values_skipped() {
    let text = r#"a:
  image: {name: nginx}
b:
  image: [nginx]
c:
  image: !!str nginx:1.13.9
d:
  image:
    repository: nginx
    tag: "1.13.9"
e:
  image:
    nginx:1.13.9
f:
  image: nginx
    :1.13.9
g:
  image: "nginx:\u0031"
h:
  image:
i:
  image: ""
j:
  image: Nginx:Latest
k:
  image: "{{ .Values.image }}"
l:
  image: 'nginx:1.13.9
m:
  image: "nginx:1.13.9" extra
n:
  image: 'nginx''1.13.9'
"#;

    let scan = scan(FileKind::Yaml, text);

    assert_eq!(scan.images, vec![]);
    let expected = [
        (2, "flow collection"),
        (4, "flow collection"),
        (6, "tag"),
        (8, "nested mapping"),
        (12, "next line"),
        (15, "continues on the next line"),
        (18, "escape sequence"),
        (24, "not a valid image reference"),
        (26, "template"),
        (28, "continues on the next line"),
        (30, "followed by text"),
        (32, "escaped quote"),
    ];
    assert_eq!(skipped_lines(&scan), expected.iter().map(|(line, _)| *line).collect::<Vec<_>>());
    for (skipped, (line, phrase)) in scan.skipped.iter().zip(expected) {
        assert!(skipped.reason.contains(phrase), "line {line}: {:?} lacks {phrase:?}", skipped.reason);
    }
    assert_eq!(scan.skipped[3].text, "image:");
}

#[test]
fn yaml_sequence_markers_and_quoted_keys() {
    let text = "- image: alpine:3.19\n- - image: busybox:1.36\n-\timage: debian:12\n- \"image\": 'ubuntu:24.04'\n- image : fedora:40\n- imagePullPolicy: Always\n- image:nginx\n-image: not-a-list-entry:1\n";

    let scan = scan(FileKind::Yaml, text);

    assert_eq!(
        scan.images,
        vec![
            found(text, "alpine:3.19", 1),
            found(text, "busybox:1.36", 2),
            found(text, "debian:12", 3),
            found(text, "ubuntu:24.04", 4),
            found(text, "fedora:40", 5),
        ]
    );
    assert_eq!(scan.skipped, vec![]);
}

#[test]
fn yaml_flow_mapping_image_skipped() {
    let text = "containers:\n  - {name: web, image: nginx:1.13.9}\nsidecar: {image: \"alpine:3.19\"}  # logs\nlabels: {baseimage: alpine}\n";

    let scan = scan(FileKind::Yaml, text);

    assert_eq!(scan.images, vec![]);
    assert_eq!(skipped_lines(&scan), vec![2, 3]);
    assert_eq!(scan.skipped[0].text, "{name: web, image: nginx:1.13.9}");
    assert_eq!(scan.skipped[1].text, "sidecar: {image: \"alpine:3.19\"}");
    assert!(scan.skipped[0].reason.contains("flow mapping"), "{}", scan.skipped[0].reason);
}

#[test]
fn yaml_multiple_documents_scanned() {
    let text = "---\nimage: alpine:3.19\n...\n---\n# second document\nimage: busybox:1.36\n";

    let scan = scan(FileKind::Yaml, text);

    assert_eq!(scan.images, vec![found(text, "alpine:3.19", 2), found(text, "busybox:1.36", 6)]);
}

#[test]
fn dockerfile_heredocs_and_escape_directive() {
    let text = "# escape=`\nFROM alpine:3.19 AS base\nRUN <<EOF\nFROM not-an-image:1\nEOF\nCOPY <<-'CONF' /etc/app.conf\n\tFROM also-not-an-image:1\n\tCONF\nRUN echo C:\\ `\n  && echo done\nFROM `\n  busybox:1.36\n";

    let scan = scan(FileKind::Dockerfile, text);

    assert_eq!(scan.images, vec![found(text, "alpine:3.19", 2), found(text, "busybox:1.36", 12)]);
    assert_eq!(scan.skipped, vec![]);
}

#[test]
fn dockerfile_stage_names_ignore_case() {
    let text = "FROM alpine AS alpine\nFROM ALPINE AS second\nfrom Second\nFROM SCRATCH\n";

    let scan = scan(FileKind::Dockerfile, text);

    assert_eq!(scan.images, vec![Found { range: 5..11, text: "alpine".to_owned(), line: 1 }]);
    assert_eq!(scan.skipped, vec![]);
}

#[test]
fn dockerfile_split_reference_skipped() {
    let text = "FROM ngi\\\nnx:1.13.9\n";

    let scan = scan(FileKind::Dockerfile, text);

    assert_eq!(scan.images, vec![]);
    assert_eq!(skipped_lines(&scan), vec![1]);
    assert_eq!(scan.skipped[0].text, "nginx:1.13.9");
    assert!(scan.skipped[0].reason.contains("continuation"), "{}", scan.skipped[0].reason);
}

#[test]
fn dockerfile_comments_in_continuation_ignored() {
    let text = "  # FROM commented-out:1\nFROM \\\n# a comment inside the instruction\n\n  --platform=linux/arm64 \\\n  alpine:3.19\n";

    let scan = scan(FileKind::Dockerfile, text);

    assert_eq!(scan.images, vec![found(text, "alpine:3.19", 6)]);
}

#[test]
fn pinned_text_appends_or_replaces_digest() {
    let digest = new_digest();
    let cases = [
        ("nginx:1.13.9", format!("nginx:1.13.9@sha256:{NEW_HEX}")),
        ("nginx", format!("nginx@sha256:{NEW_HEX}")),
        (
            "nginx:1.13.9@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            format!("nginx:1.13.9@sha256:{NEW_HEX}"),
        ),
        (
            "registry.example.com:5000/team/app@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            format!("registry.example.com:5000/team/app@sha256:{NEW_HEX}"),
        ),
    ];
    for (original, expected) in cases {
        assert_eq!(pinned_text(original, &digest), expected, "{original}");
    }
}

#[test]
fn rewrite_accepts_any_order() {
    let text = "a b c";
    let replacements = [(4..5, "C".to_owned()), (0..1, "A".to_owned())];

    assert_eq!(rewrite(text, &replacements).unwrap(), "A b C");
    assert_eq!(rewrite(text, &[]).unwrap(), text);
}

#[test]
fn rewrite_rejects_bad_ranges() {
    let overlapping = [(0..3, "x".to_owned()), (2..4, "y".to_owned())];
    assert_eq!(rewrite("abcdef", &overlapping), Err(RewriteError::Overlapping { first: 0..3, second: 2..4 }));

    let past_end = [(4..9, "x".to_owned())];
    assert_eq!(rewrite("abcdef", &past_end), Err(RewriteError::InvalidRange { range: 4..9, len: 6 }));

    let inside_char = [(1..2, "x".to_owned())];
    assert_eq!(rewrite("é", &inside_char), Err(RewriteError::InvalidRange { range: 1..2, len: 2 }));
}

#[test]
fn detect_kind_by_name_then_content() {
    let cases = [
        ("Dockerfile", "", FileKind::Dockerfile),
        ("build/Dockerfile.release", "", FileKind::Dockerfile),
        ("app.dockerfile", "", FileKind::Dockerfile),
        ("Containerfile", "", FileKind::Dockerfile),
        ("deploy/web.yaml", "FROM alpine\n", FileKind::Yaml),
        ("compose.yml", "", FileKind::Yaml),
        ("build/base", "# base image\nARG V=1\n  from alpine:3.19\n", FileKind::Dockerfile),
        ("manifest", "kind: Pod\nspec:\n  from: here\n", FileKind::Yaml),
    ];
    for (path, text, expected) in cases {
        assert_eq!(detect_kind(Path::new(path), text), expected, "{path}");
    }
}
