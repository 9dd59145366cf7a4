import { useLocation, useRoute } from "preact-iso";
import { DataVersion } from "../training/data-version";
import { Examples } from "./training-examples";
import { Features } from "./training-features";
import { Responses } from "./training-responses";
import { YamlDocument } from "./training-yaml";
import { ProjectFiles } from "./training-files";

// The parts of the training data, each at /training-data/<part> (the examples at /training-data).
const PARTS = [
  ["", "NLU examples", () => <Examples />],
  ["synonyms", "Synonyms", () => <Features part="synonyms" />],
  ["regexes", "Regexes", () => <Features part="regexes" />],
  ["lookup_tables", "Lookup tables", () => <Features part="lookup_tables" />],
  ["responses", "Responses", () => <Responses />],
  ["domain", "Domain", () => <YamlDocument part="domain" />],
  ["config", "Config", () => <YamlDocument part="config" />],
  ["files", "Upload and download", () => <ProjectFiles />],
] as const;

/** Training data: a tab for each part, the marker of changes since the last model above them. */
export function TrainingData() {
  const { params } = useRoute();
  const { path } = useLocation();
  const part = PARTS.find(([name]) => name === (params.part ?? "")) ?? null;
  return (
    <div class="training">
      <h1 id="training-title">Training data</h1>
      <DataVersion />
      <nav aria-label="Parts of the training data" class="subnav">
        <ul>
          {PARTS.map(([name, label]) => {
            const href = name ? `/training-data/${name}` : "/training-data";
            return (
              <li key={name}>
                <a href={href} aria-current={path === href ? "page" : undefined}>
                  {label}
                </a>
              </li>
            );
          })}
        </ul>
      </nav>
      {part ? part[2]() : <p>No such part of the training data.</p>}
    </div>
  );
}
