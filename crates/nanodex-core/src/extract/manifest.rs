//! Dependency manifests: requirements*.txt, pyproject.toml, setup.cfg, pom.xml, build.gradle(.kts), CMakeLists.txt,
//! package.json. Each yields the names of the external packages the project declares. Pure: text in, records out.

use serde::{Deserialize, Serialize};

/// One declared dependency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dependency {
    /// Manifest path relative to the repository root.
    pub manifest: String,
    /// Package name as the ecosystem spells it (`requests`, `org.slf4j:slf4j-api`, `Boost`, `lodash`).
    pub name: String,
    /// `pypi`, `maven`, `cmake` or `npm`.
    pub ecosystem: String,
    /// Line of the declaration, 1-based (0 when unknown).
    pub line: u32,
}

/// Whether a file name is a manifest this module reads.
pub fn is_manifest(file_name: &str) -> bool {
    (file_name.starts_with("requirements") && file_name.ends_with(".txt"))
        || matches!(
            file_name,
            "pyproject.toml"
                | "setup.cfg"
                | "pom.xml"
                | "build.gradle"
                | "build.gradle.kts"
                | "CMakeLists.txt"
                | "package.json"
        )
}

/// Reads the dependencies declared in one manifest; unparsable content yields none.
pub fn parse_manifest(rel_path: &str, text: &str) -> Vec<Dependency> {
    let file_name = rel_path.rsplit('/').next().unwrap_or(rel_path);
    let mut out = Vec::new();
    let mut push = |name: &str, ecosystem: &str, line: usize| {
        let name = name.trim();
        if !name.is_empty() && !out.iter().any(|d: &Dependency| d.name == name) {
            out.push(Dependency {
                manifest: rel_path.to_string(),
                name: name.to_string(),
                ecosystem: ecosystem.into(),
                line: line as u32,
            });
        }
    };
    match file_name {
        "pyproject.toml" => {
            let Ok(doc) = text.parse::<toml::Table>() else {
                return out;
            };
            let mut specs: Vec<String> = Vec::new();
            if let Some(deps) = doc
                .get("project")
                .and_then(|p| p.get("dependencies"))
                .and_then(|d| d.as_array())
            {
                specs.extend(deps.iter().filter_map(|d| d.as_str().map(String::from)));
            }
            if let Some(groups) = doc
                .get("project")
                .and_then(|p| p.get("optional-dependencies"))
                .and_then(|d| d.as_table())
            {
                for deps in groups.values().filter_map(|v| v.as_array()) {
                    specs.extend(deps.iter().filter_map(|d| d.as_str().map(String::from)));
                }
            }
            let poetry = doc
                .get("tool")
                .and_then(|t| t.get("poetry"))
                .and_then(|p| p.get("dependencies"))
                .and_then(|d| d.as_table());
            if let Some(poetry) = poetry {
                specs.extend(poetry.keys().filter(|k| k.as_str() != "python").cloned());
            }
            for spec in specs {
                let line = text
                    .lines()
                    .position(|l| l.contains(spec.as_str()))
                    .map_or(0, |i| i + 1);
                push(pep508_name(&spec), "pypi", line);
            }
        }
        "setup.cfg" => {
            let mut in_requires = false;
            for (i, line) in text.lines().enumerate() {
                let trimmed = line.trim();
                if let Some(rest) = trimmed.strip_prefix("install_requires") {
                    in_requires = true;
                    let rest = rest.trim_start().trim_start_matches('=').trim();
                    if !rest.is_empty() {
                        push(pep508_name(rest), "pypi", i + 1);
                    }
                } else if in_requires && line.starts_with([' ', '\t']) && !trimmed.is_empty() {
                    if !trimmed.starts_with('#') {
                        push(pep508_name(trimmed), "pypi", i + 1);
                    }
                } else if !trimmed.is_empty() {
                    in_requires = false;
                }
            }
        }
        "pom.xml" => {
            let mut rest = text;
            let mut offset = 0;
            while let Some(start) = rest.find("<dependency>") {
                let Some(end) = rest[start..].find("</dependency>") else {
                    break;
                };
                let block = &rest[start..start + end];
                let group = xml_tag(block, "groupId");
                let artifact = xml_tag(block, "artifactId");
                if let (Some(g), Some(a)) = (group, artifact) {
                    let line = text[..offset + start].lines().count() + 1;
                    push(&format!("{g}:{a}"), "maven", line);
                }
                offset += start + end;
                rest = &rest[start + end..];
            }
        }
        "build.gradle" | "build.gradle.kts" => {
            const CONFIGS: [&str; 8] = [
                "implementation",
                "api",
                "compile",
                "compileOnly",
                "runtimeOnly",
                "testImplementation",
                "testCompile",
                "annotationProcessor",
            ];
            for (i, line) in text.lines().enumerate() {
                let trimmed = line.trim();
                if !CONFIGS.iter().any(|c| trimmed.starts_with(c)) {
                    continue;
                }
                let Some(q) = trimmed.find(['"', '\'']) else {
                    continue;
                };
                let coord = trimmed[q + 1..].split(['"', '\'']).next().unwrap_or("");
                let mut parts = coord.split(':');
                if let (Some(g), Some(a)) = (parts.next(), parts.next()) {
                    push(&format!("{g}:{a}"), "maven", i + 1);
                }
            }
        }
        "CMakeLists.txt" => {
            for (i, line) in text.lines().enumerate() {
                let trimmed = line.trim_start();
                let lower = trimmed.to_ascii_lowercase();
                for cmd in [
                    "find_package(",
                    "fetchcontent_declare(",
                    "pkg_check_modules(",
                ] {
                    if lower.starts_with(cmd) {
                        // ASCII lower-casing keeps byte offsets, so the prefix length applies to the original.
                        let args = &trimmed[cmd.len()..];
                        let mut words = args.split(|c: char| c.is_whitespace() || c == ')');
                        let mut name = words.next().unwrap_or("");
                        if cmd == "pkg_check_modules(" {
                            name = words
                                .find(|w| {
                                    !w.is_empty()
                                        && !w.starts_with("REQUIRED")
                                        && !w.starts_with("IMPORTED")
                                })
                                .unwrap_or("");
                        }
                        push(name, "cmake", i + 1);
                    }
                }
            }
        }
        "package.json" => {
            let Ok(json) = serde_json::from_str::<serde_json::Value>(text) else {
                return out;
            };
            for section in [
                "dependencies",
                "devDependencies",
                "peerDependencies",
                "optionalDependencies",
            ] {
                if let Some(deps) = json.get(section).and_then(|d| d.as_object()) {
                    for name in deps.keys() {
                        let needle = format!("\"{name}\"");
                        let line = text
                            .lines()
                            .position(|l| l.contains(&needle))
                            .map_or(0, |i| i + 1);
                        push(name, "npm", line);
                    }
                }
            }
        }
        _ if file_name.starts_with("requirements") => {
            for (i, line) in text.lines().enumerate() {
                let trimmed = line.split(" #").next().unwrap_or("").trim();
                if trimmed.is_empty() || trimmed.starts_with(['#', '-']) || trimmed.contains("://")
                {
                    continue;
                }
                push(pep508_name(trimmed), "pypi", i + 1);
            }
        }
        _ => {}
    }
    out
}

/// The distribution name at the start of a PEP 508 requirement (`requests[socks]>=2; python_version>"3"`).
fn pep508_name(spec: &str) -> &str {
    let end = spec
        .find(|c: char| !(c.is_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(spec.len());
    &spec[..end]
}

fn xml_tag<'t>(block: &'t str, tag: &str) -> Option<&'t str> {
    let open = format!("<{tag}>");
    let start = block.find(&open)? + open.len();
    let end = block[start..].find('<')?;
    Some(block[start..start + end].trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(path: &str, text: &str) -> Vec<String> {
        parse_manifest(path, text)
            .into_iter()
            .map(|d| format!("{}:{}", d.name, d.line))
            .collect()
    }

    #[test]
    fn reads_each_manifest_kind() {
        assert_eq!(
            names(
                "requirements-dev.txt",
                "# c\nrequests>=2.0\n-r base.txt\nnumpy[extra]==1 ; python_version>'3'\n"
            ),
            ["requests:2", "numpy:4"]
        );
        assert_eq!(
            names(
                "pyproject.toml",
                "[project]\nname='x'\ndependencies = [\n  'click>=8',\n]\n[project.optional-dependencies]\ndev=['pytest']\n"
            ),
            ["click:4", "pytest:7"]
        );
        assert_eq!(
            names(
                "a/setup.cfg",
                "[options]\ninstall_requires =\n    six\n    attrs>=1\n[other]\nx = 1\n"
            ),
            ["six:3", "attrs:4"]
        );
        assert_eq!(
            names(
                "pom.xml",
                "<project>\n<dependencies>\n<dependency>\n<groupId>org.slf4j</groupId>\n<artifactId>slf4j-api</artifactId>\n</dependency>\n</dependencies>\n</project>"
            ),
            ["org.slf4j:slf4j-api:3"]
        );
        assert_eq!(
            names(
                "build.gradle",
                "dependencies {\n  implementation 'com.google.guava:guava:33.0'\n  testImplementation(\"junit:junit:4.13\")\n}\n"
            ),
            ["com.google.guava:guava:2", "junit:junit:3"]
        );
        assert_eq!(
            names(
                "CMakeLists.txt",
                "project(x)\nfind_package(Boost 1.74 REQUIRED)\nFIND_PACKAGE(fmt)\n"
            ),
            ["Boost:2", "fmt:3"]
        );
        assert_eq!(
            names(
                "package.json",
                "{\n \"dependencies\": {\n  \"lodash\": \"^4\"\n },\n \"devDependencies\": {\"vitest\": \"1\"}\n}"
            ),
            ["lodash:3", "vitest:5"]
        );
        assert!(names("package.json", "{not json").is_empty());
    }
}
