// The console's only door to vodpipe: config.json, Cognito sign-in, the API's /console/api
// routes (ID token in Authorization), and presigned-POST uploads with progress.
let config = null;
const TOKEN_KEY = "vodpipe.idToken";

export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

/** config.json beside index.html: {api_url, region, cognito: {endpoint?, user_pool_id, client_id}, sign_in?} */
export async function loadConfig() {
  const response = await fetch("config.json", { cache: "no-store" });
  if (!response.ok) throw new ApiError(response.status, "config.json is missing: see README, Web console");
  config = await response.json();
  return config;
}

function tokenClaims(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload));
  } catch { return null; }
}

function storedToken() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const claims = token && tokenClaims(token);
  return claims && claims.exp * 1000 > Date.now() + 30_000 ? token : null;
}

/** Cognito InitiateAuth (USER_PASSWORD_AUTH) -> the ID token, kept for this tab. */
export async function signIn(username, password) {
  const cognito = config.cognito;
  const endpoint = cognito.endpoint || `https://cognito-idp.${config.region}.amazonaws.com/`;
  const response = await fetch(endpoint, {
    method: "POST",
    headers: { "Content-Type": "application/x-amz-json-1.1",
               "X-Amz-Target": "AWSCognitoIdentityProviderService.InitiateAuth" },
    body: JSON.stringify({ AuthFlow: "USER_PASSWORD_AUTH", ClientId: cognito.client_id,
                           AuthParameters: { USERNAME: username, PASSWORD: password } }),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok || !answer.AuthenticationResult) {
    throw new ApiError(response.status, answer.message || answer.__type || "sign-in failed");
  }
  sessionStorage.setItem(TOKEN_KEY, answer.AuthenticationResult.IdToken);
  return tokenClaims(answer.AuthenticationResult.IdToken);
}

let pendingSignIn = null;
/** A valid ID token: the stored one, the local operator's (config.sign_in), or the dialog's. */
async function token() {
  const stored = storedToken();
  if (stored) return stored;
  if (!config.cognito) throw new ApiError(401, "this deployment has no console user pool");
  if (!pendingSignIn) {
    pendingSignIn = (config.sign_in
      ? signIn(config.sign_in.username, config.sign_in.password)
      : askForSignIn()).finally(() => { pendingSignIn = null; });
  }
  await pendingSignIn;
  return storedToken();
}

function askForSignIn() {
  const dialog = document.getElementById("signin");
  const form = document.getElementById("signin-form");
  const error = document.getElementById("signin-error");
  return new Promise((resolve) => {
    form.onsubmit = async (event) => {
      event.preventDefault();
      try {
        resolve(await signIn(form.username.value, form.password.value));
        dialog.close();
      } catch (e) { error.textContent = e.message; }
    };
    dialog.showModal();
  });
}

export function signedInAs() {
  const claims = tokenClaims(storedToken() || "");
  return claims ? claims.email || claims["cognito:username"] : "";
}

/** Call the API: JSON in, JSON out; throws ApiError with the API's message. */
export async function api(path, { method = "GET", body } = {}) {
  for (let attempt = 0; attempt < 2; attempt++) {
    const response = await fetch(config.api_url + path, {
      method,
      headers: { Authorization: await token(), ...(body ? { "Content-Type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    if (response.status === 401 && attempt === 0) { sessionStorage.removeItem(TOKEN_KEY); continue; }
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = { Message: text }; }
    if (!response.ok) {
      throw new ApiError(response.status, (data && (data.Message || data.message)) || `HTTP ${response.status}`);
    }
    return data;
  }
  throw new ApiError(401, "not authorized");
}

/** POST the file with a presigned form ({url, fields}); onProgress(bytesSent, bytesTotal).
 *  Resolves when S3 has the object; rejects with S3's error message. */
export function uploadFile(presigned, file, onProgress) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    for (const [name, value] of Object.entries(presigned.fields)) form.append(name, value);
    form.append("file", file);  // S3 ignores fields after the file: it comes last
    const request = new XMLHttpRequest();
    request.open("POST", presigned.url);
    request.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded, e.total); };
    request.onload = () => {
      if (request.status >= 200 && request.status < 300) return resolve();
      const reason = /<Message>([^<]*)<\/Message>/.exec(request.responseText || "");
      reject(new ApiError(request.status, `upload refused by S3: ${reason ? reason[1] : request.status}`));
    };
    request.onerror = () => reject(new ApiError(0, "upload failed: network error"));
    request.send(form);
  });
}
