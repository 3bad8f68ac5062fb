// An MCP host written with the official TypeScript SDK, driving sora-mcp over stdio the way an agent would:
// list the tools, create a video, wait for it with get_task(wait_seconds=50) and a progress handler, read the
// structured result, download the video, try a bad argument, and fetch the make_video prompt. Prints one JSON
// report on stdout.
//
//     node sdk_client.mjs <server command> [args...]     (SORA_* variables are passed to the server's env)
//
// The SDK validates every structuredContent against the tool's outputSchema, so a result that does not match
// its declared schema fails the run.

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const [command, ...args] = process.argv.slice(2);
if (!command) {
  console.error("usage: node sdk_client.mjs <server command> [args...]");
  process.exit(2);
}

// Like a host's "env" block: only what is configured reaches the server (the SDK adds PATH, HOME and a few more).
const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => name.startsWith("SORA_")));
const transport = new StdioClientTransport({ command, args, env });
const client = new Client({ name: "sora-mcp-interop-ts", version: "1.0.0" });

function textOf(result) {
  return result.content.filter((block) => block.type === "text").map((block) => block.text).join("\n");
}

async function main() {
  await client.connect(transport);
  const report = { server: client.getServerVersion() };

  const { tools } = await client.listTools();
  report.tools = tools.map((tool) => ({
    name: tool.name,
    hasOutputSchema: tool.outputSchema?.type === "object",
    readOnly: tool.annotations?.readOnlyHint ?? null,
  }));

  const created = await client.callTool({
    name: "create_video",
    arguments: { prompt: "a hot-air balloon drifting over a glacier at dawn, wide aerial shot", duration: 10 },
  });
  if (created.isError) throw new Error(`create_video failed: ${textOf(created)}`);
  report.created = created.structuredContent;

  report.progress = [];
  report.waits = 0;
  let task = created.structuredContent;
  while (task.status !== "completed" && task.status !== "failed" && report.waits < 5) {
    const waited = await client.callTool(
      { name: "get_task", arguments: { task_id: task.task_id, wait_seconds: 50 } },
      undefined,
      {
        onprogress: ({ progress, total, message }) => report.progress.push({ progress, total, message }),
        resetTimeoutOnProgress: true,
        timeout: 30_000,
      },
    );
    report.waits += 1;
    if (waited.isError) throw new Error(`get_task failed: ${textOf(waited)}`);
    task = waited.structuredContent;
  }
  report.final = task;

  const downloaded = await client.callTool({ name: "download_video", arguments: { task_id: task.task_id } });
  if (downloaded.isError) throw new Error(`download_video failed: ${textOf(downloaded)}`);
  report.downloaded = downloaded.structuredContent;
  report.downloadLinks = downloaded.content.filter((block) => block.type === "resource_link").map((block) => block.uri);

  const bad = await client.callTool({ name: "create_video", arguments: { prompt: "a cat", size: "4:3" } });
  report.badArgument = { isError: bad.isError === true, text: textOf(bad) };

  const prompt = await client.getPrompt({
    name: "make_video",
    arguments: { idea: "a hot-air balloon over a glacier", duration: "25" },
  });
  report.prompt = prompt.messages.map((message) => message.content.text).join("\n");

  process.stdout.write(`${JSON.stringify(report)}\n`);
}

try {
  await main();
} catch (error) {
  console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.exitCode = 1;
} finally {
  await client.close();
}
