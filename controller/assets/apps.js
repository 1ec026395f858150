// An app's page: the caller's star rating, sent to the API as soon as a
// star is chosen (PUT /api/v1/apps/{app}/rating) or taken back (DELETE);
// the average shown beside it follows the API's answer.
"use strict";

(function () {
  const { api, toast } = window.berth;
  const form = document.getElementById("rate");
  if (!form) return;
  const app = form.dataset.app;
  const at = `/api/v1/apps/${encodeURIComponent(app)}/rating`;
  const clear = document.getElementById("rate-clear");
  const average = document.getElementById("rating-average");

  function show(rating) {
    average.replaceChildren();
    if (rating.average === null || rating.average === undefined) {
      const none = document.createElement("span");
      none.className = "muted";
      none.textContent = "not rated";
      average.appendChild(none);
    } else {
      const said = `${rating.average.toFixed(1)} of 5 stars from ${rating.count} rating${rating.count === 1 ? "" : "s"}`;
      const stars = document.createElement("span");
      stars.className = "stars";
      stars.setAttribute("role", "img");
      stars.setAttribute("aria-label", said);
      stars.title = said;
      const full = Math.max(0, Math.min(5, Math.round(rating.average)));
      const on = document.createElement("span");
      on.className = "on";
      on.setAttribute("aria-hidden", "true");
      on.textContent = "★".repeat(full);
      const off = document.createElement("span");
      off.className = "off";
      off.setAttribute("aria-hidden", "true");
      off.textContent = "★".repeat(5 - full);
      stars.append(on, off);
      const figure = document.createElement("span");
      figure.className = "rating-figure";
      figure.textContent = ` ${rating.average.toFixed(1)} (${rating.count})`;
      average.append(stars, figure);
    }
    clear.hidden = rating.my_stars === null || rating.my_stars === undefined;
  }

  form.addEventListener("change", async (event) => {
    if (event.target.name !== "stars") return;
    const stars = Number(event.target.value);
    try {
      show(await api("PUT", at, { stars }));
      toast(`You rated ${app} ${stars} of 5`);
    } catch (err) {
      toast(`Rate ${app}: ${err.message}`, true);
    }
  });

  clear.addEventListener("click", async () => {
    try {
      show(await api("DELETE", at));
      for (const input of form.querySelectorAll('input[name="stars"]')) input.checked = false;
      toast(`Your rating of ${app} is taken back`);
    } catch (err) {
      toast(`Take back the rating of ${app}: ${err.message}`, true);
    }
  });
})();
