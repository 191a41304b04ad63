import { condition, defineSignal, setHandler } from '@temporalio/workflow';

export const finishSignal = defineSignal<[string]>('finish');

/** Smallest real workflow: waits for a signal and returns what it carried. */
export async function pingWorkflow(greeting: string): Promise<string> {
  let reply: string | undefined;
  setHandler(finishSignal, (value) => {
    reply = value;
  });
  await condition(() => reply !== undefined);
  return `${greeting} ${reply}`;
}
