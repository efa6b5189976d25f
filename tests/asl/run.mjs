// Runs the generated Step Functions definition in aws-local-stepfunctions (JSONPath checks as strict
// as Step Functions' own: a path that points nowhere fails with States.Runtime), with every Task
// state routed to the REAL code it names on AWS:
// - a Batch task (`batch:submitJob.sync`) spawns the Batch image's entrypoint,
//   `python -m functions.batch_step.main <ContainerOverrides.Command>`; exit 0 is a SUCCEEDED job,
//   any other exit a FAILED one, thrown as Step Functions does: `States.TaskFailed` with the job
//   description (StatusReason, Container.ExitCode) as JSON in Cause;
// - a queued GPU step (`sqs:sendMessage.waitForTaskToken`, the batched GPU path) runs the same
//   entrypoint for that one item, as its batch job would (the batch mechanics themselves, manifests and
//   tokens, are tested under moto): exit 0 settles the token with the job's answer, any other exit
//   fails it with `GpuStepCrashed`, as functions.batch_step.main's run_batch reports a crashed item;
// - a Lambda task (`lambda:invoke`) runs `functions.pipeline_events.handler.process(Payload)` in a
//   warm "container" (one Python process for the whole request, configured on its first invoke, as
//   a Lambda container is); an exception is a function error, thrown under its type name.
// The children get `env` from the request (pointing them at a moto server).
//
// Usage: node run.mjs REQUEST.json  ->  one JSON document on stdout: {results: [RESULT per run]}.
// REQUEST: {definition, runs: [{input, plan?, env?}], python?, cwd?, env?, retry_interval_ms?, stub?,
//           concurrency?}
//   runs[].env: added to `env` for that run's children.
//   concurrency: how many runs execute at once (default 1); results keep the order of `runs`.
//   retry_interval_ms: the pause before every retry (the library's retryIntervalOverrides), so the
//                      deployed definition runs without its deployed pauses.
//   stub: true - no children: every Batch job succeeds and every Lambda answers at once (to sweep
//                the definition's paths over every input and failure).
//   plan.batch[step]: "crash"   - the job fails on Batch every attempt (States.TaskFailed, exit 1)
//                                 without running the entrypoint
//                     "timeout" - the job never leaves RUNNABLE: the state's own TimeoutSeconds
//                                 elapses (States.Timeout). A state without TimeoutSeconds would
//                                 hang the execution: reported as a problem (and failed).
//   plan.lambda["<action>" or "<action>:<feature>"]: an error name the invoke fails with, every attempt.
// RESULT: {status: SUCCEEDED|FAILED, output?, error?: {name, message}, calls, states, problems}
//   calls: every Task invocation in order: {state, kind: batch|lambda, step|payload, result}
//   states: the names of the states entered, in order (nested ones included).

// aws-local-stepfunctions 3.0.0 uses Promise.withResolvers (Node >= 22); Node 20 lacks it.
if (typeof Promise.withResolvers !== "function") {
  Promise.withResolvers = function withResolvers() {
    let resolve, reject;
    const promise = new this((res, rej) => ((resolve = res), (reject = rej)));
    return { promise, resolve, reject };
  };
}

import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";

const { StateMachine, ExecutionError } = await import("aws-local-stepfunctions");

const BATCH_SYNC = "arn:aws:states:::batch:submitJob.sync";
const SQS_SEND_WAIT = "arn:aws:states:::sqs:sendMessage.waitForTaskToken";
const LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke";
const JOB_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;
const TAIL = 4000;
const REASON = "Essential container in task exited";

const request = JSON.parse(readFileSync(process.argv[2], "utf8"));

// The events Lambda's container: imports the handler once (its cold start), then answers one
// invocation per line on stdin, on fd 3 (the handler's own logs go to stdout and stderr).
const LAMBDA_CONTAINER = `
import json, os, sys, traceback
from functions.pipeline_events import handler
answers = os.fdopen(3, "w")
for line in sys.stdin:
    try:
        if "runner" not in handler._state:
            handler.configure()
        answer = {"result": handler.process(json.loads(line))}
    except Exception as e:
        answer = {"errorType": type(e).__name__, "errorMessage": str(e),
                  "stackTrace": traceback.format_exc().splitlines()}
    answers.write(json.dumps(answer) + "\\n")
    answers.flush()
`;

let container = null;

function lambdaContainer() {
  if (container) return container;
  const child = spawn(request.python, ["-c", LAMBDA_CONTAINER], {
    cwd: request.cwd,
    env: request.env ?? {},
    stdio: ["pipe", "pipe", "pipe", "pipe"],
  });
  let log = "";
  let buffer = "";
  const waiting = [];
  child.stdout.on("data", (d) => (log = (log + d).slice(-TAIL)));
  child.stderr.on("data", (d) => (log = (log + d).slice(-TAIL)));
  child.stdio[3].on("data", (d) => {
    buffer += d;
    for (let i; (i = buffer.indexOf("\n")) >= 0; buffer = buffer.slice(i + 1)) {
      waiting.shift()(JSON.parse(buffer.slice(0, i)));
    }
  });
  const closed = new Promise((resolve) => child.on("close", resolve));
  closed.then((code) => {
    container = null;
    for (const resolve of waiting.splice(0)) {
      resolve({ errorType: "Lambda.Unknown", errorMessage: `the container exited (${code})`, stackTrace: [] });
    }
  });
  container = {
    log: () => log,
    invoke: (payload) =>
      new Promise((resolve) => {
        waiting.push(resolve);
        child.stdin.write(JSON.stringify(payload) + "\n");
      }),
    close: () => (child.stdin.end(), closed),
  };
  return container;
}

function taskStates(states, out = {}) {
  for (const [name, state] of Object.entries(states)) {
    if (state.Type === "Task") out[name] = state;
    for (const branch of state.Branches ?? []) taskStates(branch.States, out);
    const processor = state.ItemProcessor ?? state.Iterator;
    if (processor) taskStates(processor.States, out);
  }
  return out;
}

function namedError(name, message) {
  const error = new Error(message);
  error.name = name;
  return error;
}

async function execute(machine, definition, input, plan, extraEnv) {
  plan = { batch: {}, lambda: {}, ...(plan ?? {}) };
  const env = { ...(request.env ?? {}), ...(extraEnv ?? {}) };
  const calls = [];
  const problems = [];
  const children = new Set();

  function spawnPython(args) {
    return new Promise((resolve) => {
      const child = spawn(request.python, args, { cwd: request.cwd, env });
      children.add(child);
      let out = "";
      let err = "";
      child.stdout.on("data", (d) => (out = (out + d).slice(-TAIL)));
      child.stderr.on("data", (d) => (err = (err + d).slice(-TAIL)));
      child.on("close", (code) => {
        children.delete(child);
        resolve({ code: code ?? 128, out, err });
      });
      child.stdin.end();
    });
  }

  // The Batch image's entrypoint for one step (or a simulated crash, or a stub): its exit status.
  async function runStep(call, mode, command) {
    if (mode === "crash") {
      call.result = "simulated crash (exit 1)";
      return 1;
    }
    if (request.stub) {
      call.result = "stub exit 0";
      return 0;
    }
    const started = Date.now();
    const proc = await spawnPython(["-m", "functions.batch_step.main", ...command]);
    call.ms = Date.now() - started;
    if (proc.code !== 0) call.log = (proc.out + proc.err).slice(-TAIL);
    call.result = `exit ${proc.code}`;
    return proc.code;
  }

  function batchHandler(stateName, state) {
    return async (params) => {
      const command = params?.ContainerOverrides?.Command;
      const step = Array.isArray(command) ? command[command.indexOf("--step") + 1] : undefined;
      const call = { state: stateName, kind: "batch", step, command };
      calls.push(call);
      // What Batch's SubmitJob itself would refuse.
      const bad = [];
      if (typeof params?.JobName !== "string" || !JOB_NAME.test(params.JobName)) bad.push(`JobName ${params?.JobName}`);
      if (typeof params?.JobQueue !== "string" || !params.JobQueue) bad.push("JobQueue");
      if (typeof params?.JobDefinition !== "string" || !params.JobDefinition) bad.push("JobDefinition");
      if (!Array.isArray(command) || !command.every((c) => typeof c === "string")) bad.push("Command");
      const limit = params?.Timeout?.AttemptDurationSeconds;
      if (limit !== undefined && !(Number.isInteger(limit) && limit >= 60)) bad.push("Timeout.AttemptDurationSeconds");
      if (bad.length) {
        call.result = `refused by SubmitJob: ${bad.join(", ")}`;
        throw namedError("Batch.ClientException", call.result);
      }
      const job = { JobId: randomUUID(), JobName: params.JobName, JobQueue: params.JobQueue, JobDefinition: params.JobDefinition };
      const mode = plan.batch[step];
      if (mode === "timeout") {
        if (!state.TimeoutSeconds && !state.TimeoutSecondsPath) {
          call.result = "stuck RUNNABLE, and the state has no TimeoutSeconds: the execution hangs";
          problems.push(`${stateName}: no TimeoutSeconds, so a job stuck RUNNABLE hangs the execution`);
          throw namedError("Harness.Hang", call.result);
        }
        call.result = `timed out (TimeoutSeconds ${state.TimeoutSeconds ?? state.TimeoutSecondsPath})`;
        throw namedError("States.Timeout", "States.Timeout");
      }
      const exitCode = await runStep(call, mode, command);
      if (exitCode === 0) {
        return { ...job, Status: "SUCCEEDED", StatusReason: REASON, Container: { Command: command, ExitCode: 0 } };
      }
      const description = {
        ...job,
        Status: "FAILED",
        StatusReason: REASON,
        Attempts: [{ Container: { ExitCode: exitCode, Reason: REASON }, StatusReason: REASON }],
        Container: { Command: command, ExitCode: exitCode },
      };
      throw namedError("States.TaskFailed", JSON.stringify(description));
    };
  }

  function queuedHandler(stateName, state) {
    return async (params) => {
      const body = params?.MessageBody ?? {};
      const step = body.step;
      const command = ["--tenant-id", body.tenant_id, "--task-id", body.task_id, "--step", step];
      const call = { state: stateName, kind: "batch", queued: true, step, command };
      calls.push(call);
      // What SendMessage, and the batcher reading the body, would refuse.
      const bad = [];
      if (typeof params?.QueueUrl !== "string" || !params.QueueUrl) bad.push("QueueUrl");
      if (typeof params?.MessageGroupId !== "string" || !params.MessageGroupId) bad.push("MessageGroupId");
      for (const k of ["tenant_id", "task_id", "step", "token"]) {
        if (typeof body[k] !== "string" || !body[k]) bad.push(`MessageBody.${k}`);
      }
      if (bad.length) {
        call.result = `refused: ${bad.join(", ")}`;
        throw namedError("SQS.InvalidParameterValueException", call.result);
      }
      const mode = plan.batch[step];
      if (mode === "timeout") {
        if (!state.TimeoutSeconds || !state.HeartbeatSeconds) {
          call.result = "never picked up, and the state lacks TimeoutSeconds or HeartbeatSeconds: it hangs";
          problems.push(`${stateName}: a queued step needs TimeoutSeconds and HeartbeatSeconds`);
          throw namedError("Harness.Hang", call.result);
        }
        call.result = `timed out (HeartbeatSeconds ${state.HeartbeatSeconds})`;
        throw namedError("States.Timeout", "States.Timeout");
      }
      const exitCode = await runStep(call, mode, command);
      if (exitCode === 0) return { status: "completed", ran: true };
      throw namedError("GpuStepCrashed", `${step} crashed (exit ${exitCode})`);
    };
  }

  function lambdaHandler(stateName) {
    return async (params) => {
      const payload = params?.Payload;
      const call = { state: stateName, kind: "lambda", payload };
      calls.push(call);
      if (typeof params?.FunctionName !== "string" || !params.FunctionName || payload === undefined) {
        call.result = "refused by Invoke: FunctionName/Payload";
        throw namedError("Lambda.InvalidRequestContentException", call.result);
      }
      const injected = plan.lambda[`${payload.action}:${payload.feature}`] ?? plan.lambda[payload.action];
      if (injected) {
        call.result = `simulated ${injected}`;
        throw namedError(injected, `simulated ${injected}`);
      }
      if (request.stub) {
        call.result = "ok";
        return { ExecutedVersion: "$LATEST", Payload: { status: "stub" }, StatusCode: 200 };
      }
      const started = Date.now();
      const lambda = lambdaContainer();
      const answer = await lambda.invoke(payload);
      call.ms = Date.now() - started;
      if (answer.errorType !== undefined) {
        call.result = `function error ${answer.errorType}`;
        call.log = [...answer.stackTrace.slice(-12), answer.errorMessage, lambda.log()].join("\n").slice(-TAIL);
        throw namedError(answer.errorType, JSON.stringify(answer));
      }
      call.result = "ok";
      return { ExecutedVersion: "$LATEST", Payload: answer.result, StatusCode: 200 };
    };
  }

  const handlers = {};
  const retryOverrides = {};
  for (const [name, state] of Object.entries(taskStates(definition.States))) {
    if (state.Resource === BATCH_SYNC) handlers[name] = batchHandler(name, state);
    else if (state.Resource === SQS_SEND_WAIT) handlers[name] = queuedHandler(name, state);
    else if (state.Resource === LAMBDA_INVOKE) handlers[name] = lambdaHandler(name);
    else problems.push(`${name}: no local handler for Resource ${state.Resource}`);
  }
  if (request.retry_interval_ms !== undefined) {
    const withRetry = (states, out) => {
      for (const [name, state] of Object.entries(states)) {
        if (state.Retry) out[name] = request.retry_interval_ms;
        for (const branch of state.Branches ?? []) withRetry(branch.States, out);
        const processor = state.ItemProcessor ?? state.Iterator;
        if (processor) withRetry(processor.States, out);
      }
    };
    withRetry(definition.States, retryOverrides);
  }

  const result = { calls, problems, states: [] };
  let collected = Promise.resolve();
  try {
    // The Context Object as Step Functions fills it (the library's default has no StateMachine).
    const machineArn = "arn:aws:states:us-east-1:123456789012:stateMachine:mediaindex-faithful";
    const context = {
      Execution: {
        Id: `${machineArn.replace(":stateMachine:", ":execution:")}:${input.task_id ?? "run"}`,
        Input: input,
        Name: input.task_id ?? "run",
        StartTime: new Date().toISOString(),
      },
      StateMachine: { Id: machineArn, Name: "mediaindex-faithful" },
      // What `$$.Task.Token` reads in a waitForTaskToken state (one per execution is enough here).
      Task: { Token: randomUUID() },
    };
    const execution = machine.run(input, {
      overrides: { taskResourceLocalHandlers: handlers, retryIntervalOverrides: retryOverrides },
      context,
    });
    collected = (async () => {
      for await (const event of execution.eventLogs) {
        if (event.type === "StateEntered") result.states.push(event.state.name);
      }
    })();
    result.output = await execution.result;
    result.status = "SUCCEEDED";
  } catch (error) {
    result.status = "FAILED";
    const cause = error instanceof ExecutionError ? error.cause : error;
    result.error = { name: cause?.name ?? String(cause), message: cause?.message ?? "" };
  }
  await Promise.race([collected, new Promise((r) => setTimeout(r, 1000))]);
  // Step Functions terminates the Batch jobs of an aborted branch: so do we, before reporting.
  for (const child of children) child.kill("SIGKILL");
  while (children.size) await new Promise((r) => setTimeout(r, 20));
  return result;
}

// Validated here by the library's own asl-validator (paths and ARNs checked), once per request.
const machine = new StateMachine(request.definition, { validationOptions: { checkPaths: true, checkArn: true } });
const results = new Array(request.runs.length);
let next = 0;
async function worker() {
  while (next < request.runs.length) {
    const i = next++;
    const run = request.runs[i];
    results[i] = await execute(machine, request.definition, run.input, run.plan, run.env);
  }
}
await Promise.all(Array.from({ length: Math.max(1, request.concurrency ?? 1) }, worker));
if (container) await container.close();
process.stdout.write(JSON.stringify({ results }));
