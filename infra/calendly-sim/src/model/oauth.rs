//! The simulated OAuth server: consent, code exchange, refresh, revocation, and each user's
//! rate window.

use super::*;

impl SimState {
    pub fn approve(
        &mut self,
        config: &SimConfig,
        user_uuid: &str,
        query: &HashMap<String, String>,
    ) -> Result<String, String> {
        let param = |k: &str| query.get(k).cloned().ok_or_else(|| format!("missing {k}"));
        if param("client_id")? != config.client_id {
            return Err("unknown client_id".into());
        }
        if param("response_type")? != "code" {
            return Err("response_type must be code".into());
        }
        if param("code_challenge_method")? != "S256" {
            return Err("code_challenge_method must be S256".into());
        }
        // Calendly grants what was requested and the app is registered for, nothing more.
        let scope = param("scope")?;
        if let Some(unknown) = scope.split(' ').find(|s| !CATALOG.contains(s)) {
            return Err(format!("unknown scope {unknown}"));
        }
        let scopes: Vec<String> = scope
            .split(' ')
            .filter(|s| self.app_scopes.as_ref().is_none_or(|app| app.iter().any(|a| a == s)))
            .map(String::from)
            .collect();
        let code = random(24);
        let expires_at = self.now() + Duration::minutes(10);
        self.codes.insert(
            code.clone(),
            Code {
                user_uuid: user_uuid.into(),
                scopes,
                redirect_uri: param("redirect_uri")?,
                challenge: param("code_challenge")?,
                expires_at,
            },
        );
        Ok(code)
    }

    /// Exchanges a code; Err is an RFC 6749 error code.
    pub fn exchange_code(
        &mut self,
        code: &str,
        redirect_uri: Option<&str>,
        verifier: Option<&str>,
    ) -> Result<Value, (&'static str, &'static str)> {
        let grant = self
            .codes
            .remove(code)
            .ok_or(("invalid_grant", "The provided authorization grant is invalid, expired or revoked"))?;
        if grant.expires_at < self.now() {
            return Err(("invalid_grant", "The authorization code has expired"));
        }
        if redirect_uri != Some(grant.redirect_uri.as_str()) {
            return Err(("invalid_grant", "The redirect_uri does not match the authorization request"));
        }
        let verifier = verifier.ok_or(("invalid_request", "code_verifier is required"))?;
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        if challenge != grant.challenge {
            return Err(("invalid_grant", "The code_verifier does not match the code_challenge"));
        }
        Ok(self.issue_tokens(&Grant { user_uuid: grant.user_uuid, scopes: grant.scopes }))
    }

    /// Single-use refresh: the old token dies at once.
    pub fn refresh(&mut self, token: &str) -> Result<Value, (&'static str, &'static str)> {
        match self.refresh_tokens.remove(token) {
            Some(grant) => {
                self.used_refresh_tokens.insert(token.to_string(), grant.user_uuid.clone());
                Ok(self.issue_tokens(&grant))
            }
            None => {
                self.refused_refreshes += 1;
                Err((
                    "invalid_grant",
                    "The provided authorization grant is invalid, expired, revoked, or was issued to another client",
                ))
            }
        }
    }

    pub(super) fn issue_tokens(&mut self, grant: &Grant) -> Value {
        let now = self.now();
        // Recognizable, so a scan of the product's logs can tell a leaked token.
        let access = format!("calsim-access-{}", random(40));
        let refresh = format!("calsim-refresh-{}", random(32));
        let user_uuid = grant.user_uuid.clone();
        self.access_tokens.insert(
            access.clone(),
            AccessToken {
                user_uuid: user_uuid.clone(),
                expires_at: now + Duration::seconds(ACCESS_TOKEN_SECONDS),
                scopes: grant.scopes.clone(),
            },
        );
        self.refresh_tokens.insert(refresh.clone(), grant.clone());
        let org = self.user(&user_uuid).map(|u| u.organization_uri.clone()).unwrap_or_default();
        let mut answer = json!({
            "token_type": "Bearer",
            "expires_in": ACCESS_TOKEN_SECONDS,
            "created_at": now.timestamp(),
            "refresh_token": refresh,
            "access_token": access,
            "scope": grant.scopes.join(" "),
            "owner": format!("{API}/users/{user_uuid}"),
            "organization": org,
        });
        if self.omit_token_scope {
            answer.as_object_mut().map(|a| a.remove("scope"));
        }
        answer
    }

    /// The user removes the app in Calendly: every token of theirs dies, refreshes answer
    /// `invalid_grant`.
    pub fn revoke_grant(&mut self, user_uuid: &str) {
        self.access_tokens.retain(|_, t| t.user_uuid != user_uuid);
        self.refresh_tokens.retain(|_, g| g.user_uuid != user_uuid);
    }

    pub fn revoke(&mut self, token: &str) {
        let removed = self.access_tokens.remove(token).is_some() | self.refresh_tokens.remove(token).is_some();
        if removed {
            self.revoked += 1;
        }
    }

    /// The user an access token belongs to and its scopes, if it is valid now.
    pub fn authenticate(&self, token: &str) -> Option<(String, Vec<String>)> {
        let t = self.access_tokens.get(token)?;
        (t.expires_at > self.now()).then(|| (t.user_uuid.clone(), t.scopes.clone()))
    }

    /// Counts a request against the user's window (real time, like Calendly's minute); returns
    /// (limit, remaining, reset secs) or 429. The reset is whole seconds rounded down, as
    /// Calendly sends it.
    pub fn rate_limit(&mut self, user: &str, limit: u32, length: std::time::Duration) -> Result<(u32, u32, i64), i64> {
        let now = Utc::now();
        let length = Duration::from_std(length).unwrap_or(Duration::minutes(1));
        let window = self.rate_windows.entry(user.to_string()).or_insert((now, 0));
        if now - window.0 >= length {
            *window = (now, 0);
        }
        let reset = (window.0 + length - now).num_seconds().max(0);
        if self.forced_429 > 0 {
            self.forced_429 -= 1;
            return Err(1);
        }
        if window.1 >= limit {
            return Err(reset);
        }
        window.1 += 1;
        let used = window.1;
        self.peak_window_requests = self.peak_window_requests.max(used);
        Ok((limit, limit - window.1, reset))
    }
}
