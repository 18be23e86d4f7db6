// The REST API as the page uses it: bearer token, JSON, RFC 9457 problems as ApiError.

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }
}

export function createApi(token, { onUnauthorized } = {}) {
  return async function api(path, { method = "GET", body } = {}) {
    const headers = { Authorization: `Bearer ${token}`, Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(`/api/v1${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      if (response.status === 401 && onUnauthorized) onUnauthorized(data);
      throw new ApiError(response.status, data);
    }
    return { status: response.status, data };
  };
}

// What to tell a person when a request failed: the server's words, or the network's.
export function failureText(error) {
  if (error instanceof ApiError) return error.message;
  return "Baton could not be reached. Check the connection and try again.";
}
