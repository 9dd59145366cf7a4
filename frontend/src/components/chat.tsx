// The pieces of a chat with the bot, one definition for the guest chat of a share link and for
// Talk to your bot.

export interface ChatButton {
  title: string;
  payload: string;
}

/** One message of the chat: the user's or the bot's text, image and buttons (a button sends its
 * payload, shown as its title). */
export function ChatTurn({ mine, text, image, buttons, pending, onButton }: {
  mine: boolean;
  text?: string;
  image?: string;
  buttons?: ChatButton[];
  pending?: boolean;
  onButton: (button: ChatButton) => void;
}) {
  return (
    <li class={`turn ${mine ? "user" : "bot"}${pending ? " pending" : ""}`}>
      <span class="visually-hidden">{mine ? (pending ? "You (sending): " : "You: ") : "Bot: "}</span>
      {text && <p class="text">{text}</p>}
      {image && <img src={image} alt="image sent by the bot" />}
      {buttons && (
        <p class="buttons">
          {buttons.map((b) => (
            <button type="button" onClick={() => onButton(b)}>
              {b.title}
            </button>
          ))}
        </p>
      )}
    </li>
  );
}

/** The message box under a chat; `onSay` gets the trimmed text of a non-empty message. */
export function SayForm({ id, disabled, busy, onSay }: { id: string; disabled?: boolean; busy?: boolean; onSay: (text: string) => void }) {
  const submit = (event: Event) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const text = String(new FormData(form).get("message")).trim();
    if (text) onSay(text);
    form.reset();
  };
  return (
    <form class="say" onSubmit={submit}>
      <label class="visually-hidden" for={id}>
        Your message
      </label>
      <input id={id} name="message" autocomplete="off" required disabled={disabled} placeholder="Type a message" />
      <button type="submit" disabled={disabled || busy}>
        Send
      </button>
    </form>
  );
}
