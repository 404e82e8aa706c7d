// A peer: the Node library sqs-consumer (bbc), pinned 14.2.8, as its README suggests for volume:
// `handleMessageBatch` (its handler must return the messages to delete), `batchSize: 10`, several
// consumers on one SQSClient. The handler JSON.parses each body.
//
// node sqs_consumer.js QUEUE_URL CONSUMERS; endpoint, region and credentials from AWS_ENDPOINT_URL,
// AWS_REGION, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY. Runs until SIGTERM/SIGINT, then prints
// `{"deleted": N, "batches": N}` and exits.
import { SQSClient } from "@aws-sdk/client-sqs";
import { Consumer } from "sqs-consumer";

const [queueUrl, consumersArg] = process.argv.slice(2);
const consumers = Number(consumersArg ?? 16);
const counts = { deleted: 0, batches: 0 };

const sqs = new SQSClient({
  endpoint: process.env.AWS_ENDPOINT_URL, // set: the queue URL's host is not used as the endpoint
  region: process.env.AWS_REGION ?? "us-east-1",
});

for (let i = 0; i < consumers; i++) {
  const consumer = Consumer.create({
    queueUrl,
    sqs,
    batchSize: 10,
    waitTimeSeconds: 20,
    handleMessageBatch: async (messages) => {
      for (const message of messages) JSON.parse(message.Body);
      counts.batches += 1;
      counts.deleted += messages.length; // returned: sqs-consumer deletes them in one batch
      return messages;
    },
  });
  consumer.on("error", (err) => console.error(`error: ${err.message}`));
  consumer.on("processing_error", (err) => console.error(`processing_error: ${err.message}`));
  consumer.start();
}

function reportAndExit() {
  process.stdout.write(JSON.stringify(counts) + "\n", () => process.exit(0));
}
process.on("SIGTERM", reportAndExit);
process.on("SIGINT", reportAndExit);
