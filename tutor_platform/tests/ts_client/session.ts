/**
 * A student's whole session through the TypeScript client generated from
 * the OpenAPI schema (openapi-typescript types, openapi-fetch calls), with no
 * hand-written request and no cast: registering, chatting, a regeneration and
 * its variants, feedback, and erasing the account. Type-checked with
 * `tsc --strict` and run against a live server by test_generated_client.py.
 */
import createClient from "openapi-fetch";
import type { paths } from "./schema.js";

declare const process: { argv: string[] };

function check(condition: boolean, what: string): asserts condition {
  if (!condition) throw new Error(`failed: ${what}`);
}

async function main(baseUrl: string, email: string, password: string): Promise<void> {
  // JSON answers only: the event-stream 200s are not part of `data`.
  const anonymous = createClient<paths, "application/json">({ baseUrl });
  const registered = await anonymous.POST("/api/v1/auth/register/", {
    body: { email, username: "Маша_ts", password },
  });
  check(registered.data?.email === email, "register");
  const login = await anonymous.POST("/api/v1/auth/login/", { body: { email, password } });
  check(login.data !== undefined, "login");
  const student = createClient<paths, "application/json">({
    baseUrl,
    headers: { Authorization: `Bearer ${login.data.access}` },
  });

  const tutors = await anonymous.GET("/api/v1/tutors/", { params: { query: { ordering: "-rating" } } });
  const tutor = tutors.data?.results[0];
  check(tutor !== undefined, "a tutor");
  const rating: string = tutor.rating;

  const chat = await student.POST("/api/v1/chats/", { body: { tutor: tutor.id } }); // no title: optional
  check(chat.data !== undefined, "chat");
  const chatPath = { path: { id: chat.data.id } };
  const sent = await student.POST("/api/v1/chats/{id}/messages/", {
    params: { ...chatPath, header: { "Idempotency-Key": "ts-send-1" } },
    body: { content: "Что такое дробь?" },
  });
  // openapi-fetch types `data` as every 2xx body: the JSON 201, or (for the
  // event-stream 200, which has no JSON) that status's content object.
  check(sent.data !== undefined && "assistant_message" in sent.data, "send");
  const first = sent.data.assistant_message;
  check(first.role === "assistant" && first.content.includes("Что такое дробь?"), "the reply");

  const again = await student.POST("/api/v1/chats/{id}/regenerate/", {
    params: { ...chatPath, header: { "Idempotency-Key": "ts-regenerate-1" } },
  });
  check(again.data !== undefined && "assistant_message" in again.data, "regenerate");
  const variants = await student.GET("/api/v1/chats/{id}/messages/{message_id}/variants/", {
    params: { path: { id: chat.data.id, message_id: first.id } },
  });
  check(variants.data !== undefined && variants.data.length === 2, "variants: a plain array");
  const ids: number[] = variants.data.map((variant) => variant.id);
  check(ids[0] === first.id && ids[1] === again.data.assistant_message.id, "variants in order");
  const chosen = await student.POST("/api/v1/chats/{id}/messages/{message_id}/select/", {
    params: { path: { id: chat.data.id, message_id: first.id } },
  });
  check(chosen.data?.id === first.id, "select");
  const page = await student.GET("/api/v1/chats/{id}/messages/", { params: { ...chatPath, query: { limit: 10 } } });
  check(page.data !== undefined && page.data.results.length === 2 && !page.data.has_more, "page");

  const rated = await student.POST("/api/v1/feedback/", {
    body: { message: first.id, feedback_type: "detailed", rating: 5 },
  });
  check(rated.data !== undefined && rated.data.quick_reaction === "", "detailed feedback has no reaction");
  const minutes = await student.POST("/api/v1/progress/{tutor_id}/add/", {
    params: { path: { tutor_id: tutor.id } },
    body: { minutes: 25 },
  });
  check(minutes.data?.total_minutes === 25, "progress");

  const erased = await student.DELETE("/api/v1/auth/me/", { body: { password } });
  check(erased.response.status === 204, "erasure");
  const gone = await anonymous.POST("/api/v1/auth/login/", { body: { email, password } });
  check(gone.error !== undefined && gone.response.status === 401, "erased: no login");
  check(rating.length > 0, "rating is a decimal string");
  console.log(`session ok: ${first.content}`);
}

const [baseUrl, email, password] = process.argv.slice(2);
check(baseUrl !== undefined && email !== undefined && password !== undefined, "arguments");
await main(baseUrl, email, password);
