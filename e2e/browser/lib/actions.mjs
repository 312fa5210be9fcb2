// What a person does in the SPA, shared by the browser tests: sign up, log in, open a room,
// send a message, and find message rows.

import { expectAttr, expectCount, expectText, until } from './harness.mjs';

export const PASSWORD = 'correct horse battery';

/** Signs up through the form and waits until the app is connected as that user. */
export async function signUp(page, username, password = PASSWORD) {
  await page.goto('/signup');
  await page.getByTestId('signup-username').fill(username);
  await page.getByTestId('signup-password').fill(password);
  await page.getByTestId('signup-confirm').fill(password);
  await page.getByTestId('signup-submit').click();
  await expectText(page.getByTestId('current-user'), username);
  await expectAttr(page.getByTestId('connection-state'), 'data-state', 'connected');
}

/** Logs in through the form and waits until the header names the user. */
export async function logIn(page, username, password = PASSWORD) {
  await page.goto('/login');
  await page.getByTestId('login-username').fill(username);
  await page.getByTestId('login-password').fill(password);
  await page.getByTestId('login-submit').click();
  await expectText(page.getByTestId('current-user'), username);
}

/** Opens a room through the picker: type the name, press Enter. */
export async function openRoom(page, room) {
  await page.getByTestId('nav-rooms').click();
  await page.getByTestId('room-name-input').fill(room);
  await page.getByTestId('room-name-input').press('Enter');
  await page.getByTestId('room-page').and(page.locator(`[data-room="${room}"]`)).waitFor();
  // Joined once the log shows messages or says it has none (not "Joining…").
  await until(`joined ${room}`, async () => {
    const empty = await page.getByTestId('log-empty').allInnerTexts();
    return empty.length === 0 ? (await messages(page).count()) > 0 : empty.some((t) => t.includes('No messages'));
  });
}

/** Types into the composer and presses Enter. */
export async function send(page, text) {
  const input = page.getByTestId('composer-input');
  await input.fill(text);
  await input.press('Enter');
  await expectCount(page.getByTestId('message-pending'), 0);
}

export function messages(page) {
  return page.getByTestId('message-log').getByTestId('message');
}

export function messageWithText(page, text) {
  return messages(page).filter({ has: page.getByTestId('message-text').getByText(text, { exact: true }) });
}

/** The texts of every message row, in order. */
export async function messageTexts(page) {
  return messages(page).getByTestId('message-text').allInnerTexts();
}
